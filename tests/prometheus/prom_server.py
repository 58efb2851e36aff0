"""Real Prometheus and Alertmanager (Debian's packages) for tests: loopback ports, tmp storage, stopped by PID.

``.ci/prometheus.sh`` installs ``prometheus``, ``promtool`` and ``prometheus-alertmanager``; without them
the tests skip, saying so, unless ``STRATUS_REQUIRE_PROMETHEUS=1`` (set by ``.ci/run``) turns the skip
into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from testkit import eventually, free_port, stop_process

PROGRAMS = ("prometheus", "promtool")
START_TIMEOUT_S = 60.0


def require_programs(*programs: str) -> dict[str, str]:
    """Paths of ``programs``; skips (or fails under STRATUS_REQUIRE_PROMETHEUS=1) when one is missing."""
    found = {p: shutil.which(p) for p in programs}
    missing = [p for p, path in found.items() if path is None]
    if missing:
        msg = (f"{', '.join(missing)} not installed: run `bash .ci/prometheus.sh` as root "
               f"(installs Debian's prometheus and prometheus-alertmanager)")
        if os.environ.get("STRATUS_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(msg + "; STRATUS_REQUIRE_PROMETHEUS=1 makes these tests required", pytrace=False)
        pytest.skip(msg)
    return {p: str(path) for p, path in found.items()}


class _Server:
    """One server process with its own config file, tmp storage and loopback port."""

    program = ""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.program}.log"

    def args(self, config_file: Path) -> list[str]:
        raise NotImplementedError

    def start(self) -> Any:
        config_file = self.workdir / f"{self.program}.yml"
        config_file.write_text(yaml.safe_dump(self.config))
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.args(config_file), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.workdir)
        try:
            eventually(lambda: self._alive() and httpx.get(self.url + "/-/ready", timeout=2).status_code == 200,
                       START_TIMEOUT_S, f"{self.program} ready on {self.url}")
        except AssertionError:
            self.stop()
            raise AssertionError(f"{self.program} did not start; log:\n{self.log_path.read_text()[-3000:]}") \
                from None
        return self

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.program} exited with {self.proc.returncode}: "
                                 f"{self.log_path.read_text()[-3000:]}")
        return True

    def stop(self) -> None:
        """SIGTERM by PID; SIGKILL if it has not exited after 15 s."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RealPrometheus(_Server):
    """``prometheus``; ``remote_write_receiver`` turns on ``/api/v1/write``."""

    program = "prometheus"

    def __init__(self, workdir: Path, config: dict[str, Any], *, remote_write_receiver: bool = False) -> None:
        super().__init__(workdir, config)
        self.remote_write_receiver = remote_write_receiver

    def args(self, config_file: Path) -> list[str]:
        args = [require_programs("prometheus")["prometheus"], f"--config.file={config_file}",
                f"--storage.tsdb.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn"]
        if self.remote_write_receiver:
            args.append("--web.enable-remote-write-receiver")
        return args


class RealAlertmanager(_Server):
    """``prometheus-alertmanager``, clustering off (no gossip port)."""

    program = "prometheus-alertmanager"

    def args(self, config_file: Path) -> list[str]:
        return [require_programs("prometheus-alertmanager")["prometheus-alertmanager"],
                f"--config.file={config_file}", f"--storage.path={self.workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=warn"]
