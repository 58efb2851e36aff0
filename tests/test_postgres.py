"""Checkpoints in PostgreSQL (DESIGN §10, shared deployments), against the real local server.

Skipped when no server answers at ``STRATUS_TEST_PG_DSN``; CI (``.ci/run``) sets up the server, the role
and the database and sets ``STRATUS_REQUIRE_PG=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from testkit import PG_DSN, pg_reachable

from stratus.api import invoke_graph, open_checkpointer
from stratus.context import Context
from stratus.graph import build_graph
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import inject

DSN = PG_DSN
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reachable() -> None:
    """Skip (fail under ``STRATUS_REQUIRE_PG=1``) when the server cannot be reached at ``DSN``."""
    pg_reachable()


@pytest.fixture
def thread_id(reachable: None) -> Any:
    tid = f"pg-test-{uuid.uuid4().hex[:10]}"
    yield tid
    with open_checkpointer(DSN) as saver:
        saver.delete_thread(tid)


def test_incident_log_in_postgres_survives_the_process(thread_id: str) -> None:
    cluster = TwinCluster(seed=3, warm_up_s=200)
    inject(cluster.world, "scale_to_zero", "rate")
    cluster.wait(150)
    result = invoke_graph(cluster.alerts(), cluster=cluster, context=Context(db=DSN), thread_id=thread_id)
    assert result.outcome == "resolved"
    assert [t["status"] for t in result.transactions] == ["committed"]

    with open_checkpointer(DSN) as saver:  # a fresh connection reads the same log back
        state = build_graph(saver).get_state({"configurable": {"thread_id": thread_id}})
    assert state.values["report"]["outcome"] == "resolved"
    assert state.values["transactions"][0]["kubectl"] == result.transactions[0]["kubectl"]

    out = subprocess.run([sys.executable, "-m", "stratus.cli", "log", thread_id, "--db", DSN, "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    log = json.loads(out.stdout)
    assert json.dumps(log).count("kubectl scale deployment/rate") >= 1
