"""Two ``stratus serve`` processes on one PostgreSQL database (issue 9 item 4), with the real server.

Both serve the same twin (same seed, same fault), so both raise the same alert group from their own
rule evaluators; the database turns the two deliveries into one incident, one process claims it, and
it is killed with SIGKILL while its transaction is applied but not yet judged. The other process
resumes the incident from the checkpoint once the dead claim's lease lapses, undoes the open
transaction (``invoke_graph``'s crash recovery) and finishes: one incident, two runs, no second copy.

Why twins and not one real cluster: each process's twin is its own world, so the undo in the second
process restores the snapshot the first one took onto a twin that never saw the change (the same
desired state, since apply and restore set desired state). What this test proves is the claim,
lease and checkpoint protocol between processes; tests/kube/ holds the real-cluster transaction tests.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from serve_helpers import DSN, pg_reachable, pg_reset, until
from testkit import free_port

from stratus.api import open_checkpointer
from stratus.graph import build_graph

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 3


class Serve:
    """One ``stratus serve`` process on loopback (stopped by its PID at teardown)."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{name}.log"
        cmd = [sys.executable, "-m", "stratus.cli", "serve", "--db", DSN, "--port", str(self.port), "--workers", "1",
               "--lease-s", str(LEASE_S), "--twin-fault", "scale_to_zero:rate", "--twin-seed", "3",
               "--twin-poll-s", "0.5", "--twin-pace", "0.1", "--approval", "never", "--log-level", "warning"]
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "STRATUS_POLICY": "rules"})
        until(self.healthy, timeout_s=180, what=f"{name} answering /healthz (log: {self.log})")

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"stratus serve exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=10).json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Serve, Serve]]:
    pg_reachable()
    pg_reset()
    a = Serve(tmp_path, "a")
    try:
        b = Serve(tmp_path, "b")
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


def _applied(graph: Any, incident: str) -> bool:
    """The incident's checkpoint holds a transaction applied and not yet judged (read from the database
    directly: polling through a busy server could miss the settle window)."""
    txs = graph.get_state({"configurable": {"thread_id": incident}}).values.get("transactions") or []
    return any(t["status"] == "applied" for t in txs)


def test_a_killed_process_incident_is_resumed_undone_and_finished_by_the_other(two: tuple[Serve, Serve]) -> None:
    a, b = two
    [incident] = until(lambda: a.get("/api/v1/incidents")["incidents"], timeout_s=90, what="the twin's alerts")
    iid = incident["id"]
    with open_checkpointer(DSN) as saver, psycopg.connect(DSN, autocommit=True) as conn:
        graph = build_graph(checkpointer=saver)
        until(lambda: _applied(graph, iid), timeout_s=180, what="a transaction applied and not yet judged")
        [(holder,)] = conn.execute("SELECT holder FROM serve_incidents WHERE id = %s", (iid,)).fetchall()
        holder_pid = int(holder.split("/")[0].rsplit("-", 1)[1])
        victim, survivor = (a, b) if holder_pid == a.proc.pid else (b, a)
        assert holder_pid == victim.proc.pid
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        assert _applied(graph, iid), "killed mid-transaction"

    done = until(lambda: (v := survivor.get(f"/api/v1/incidents/{iid}"))["state"] == "done" and v,
                 timeout_s=300, what="the survivor finishing the incident")
    assert done["outcome"] == "resolved" and done["runs"] == 2
    assert done["holder"] is None
    statuses = [t["status"] for t in done["transactions"]]
    assert statuses[0] == "undone" and statuses[-1] == "committed", statuses
    claims = [e for e in done["timeline"] if e.get("kind") == "claimed"]
    assert [c["holder"].split("/")[0].rsplit("-", 1)[1] for c in claims] == \
        [str(victim.proc.pid), str(survivor.proc.pid)]
    assert len(survivor.get("/api/v1/incidents")["incidents"]) == 1  # both twins' deliveries: one incident
    with open_checkpointer(DSN) as saver:
        assert any(True for _ in saver.list({"configurable": {"thread_id": iid}}, limit=1))
