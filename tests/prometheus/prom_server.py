"""A real Prometheus (Debian's ``prometheus`` package) for tests: started on a loopback port, stopped by PID.

``.ci/prometheus.sh`` installs ``prometheus`` and ``promtool``; without them the tests skip, saying so,
unless ``STRATUS_REQUIRE_PROMETHEUS=1`` (set by ``.ci/run``) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``check`` (every 0.25 s, at most ``timeout_s``) until it returns something truthy."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, KeyError, ValueError) as exc:  # not up yet, or not scraped yet
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached within {timeout_s:.0f} s (last: {last!r})")


class RealPrometheus:
    """One ``prometheus`` process with its own config, tmp storage and loopback port."""

    def __init__(self, workdir: Path, config: dict[str, Any], *, remote_write_receiver: bool = False) -> None:
        self.workdir = workdir
        self.config = config
        self.remote_write_receiver = remote_write_receiver
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    def start(self) -> RealPrometheus:
        binary = require_programs("prometheus")["prometheus"]
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config))
        args = [binary, f"--config.file={config_file}", f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"]
        if self.remote_write_receiver:
            args.append("--web.enable-remote-write-receiver")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            eventually(lambda: self._alive() and httpx.get(self.url + "/-/ready", timeout=2).status_code == 200,
                       START_TIMEOUT_S, f"prometheus ready on {self.url}")
        except AssertionError:
            self.stop()
            raise AssertionError(f"prometheus did not start; log:\n{self.log_path.read_text()[-3000:]}") from None
        return self

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}: "
                                 f"{self.log_path.read_text()[-3000:]}")
        return True

    def stop(self) -> None:
        """SIGTERM by PID; SIGKILL if it has not exited after 15 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> RealPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
