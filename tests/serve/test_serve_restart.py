"""A restart of ``stratus serve`` under load loses no accepted alert (issue 9, "how good").

Runs ``bench/intake_load.py`` (a real server process on loopback, SIGKILLed and started again mid-run,
clients retrying as Alertmanager does) on a short schedule and checks its audit of the store: every
group answered 202 is stored, exactly once. The same script at full rate is the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import DSN, pg_reachable, pg_reset

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_no_accepted_alert_is_lost_across_a_kill_and_restart(backend: str) -> None:
    db = []
    if backend == "postgres":
        pg_reachable()
        pg_reset()
        db = ["--db", DSN]
    out = subprocess.run([sys.executable, "bench/intake_load.py", "--rate", "40", "--seconds", "4",
                          "--restart-at", "2", "--json", *db], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["answered_202"] == figures["requests"] == 160
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["gave_up"] == 0
    assert figures["incidents"] == figures["distinct_groups_accepted"]
    assert figures["retries"] > 0, "the server was down for part of the run"
