"""The transaction log survives the process: an incident run in one process is read back in another.

The reader uses only the checkpointer and the graph (no twin), as ``stratus log`` does on a machine
that never ran the incident.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

RUN_INCIDENT = """
import json, sys
from stratus.api import invoke_graph
from stratus.context import Context
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import inject
from stratus.twin.world import World

world = World("hotel-reservation", seed=3)
world.warm_up(300)
inject(world, "scale_to_zero", "profile")
while not [a for a in world.firing() if a["labels"]["alertname"] != "Watchdog"]:
    world.advance(15)
alerts = [a for a in world.firing() if a["labels"]["alertname"] != "Watchdog"]
result = invoke_graph(alerts, cluster=TwinCluster(world), context=Context(db=sys.argv[1]))
print(json.dumps({"id": result.incident_id, "outcome": result.outcome, "transactions": result.transactions}))
"""

READ_LOG = """
import json, sys
from stratus.api import open_checkpointer
from stratus.graph import build_graph

with open_checkpointer(sys.argv[1]) as saver:
    graph = build_graph(checkpointer=saver)
    config = {"configurable": {"thread_id": sys.argv[2]}}
    state = graph.get_state(config)
    nodes = [t.name for snap in graph.get_state_history(config) for t in snap.tasks if t.name != "__start__"]
print(json.dumps({"transactions": state.values["transactions"], "report": state.values["report"],
                  "nodes": nodes[::-1], "next": list(state.next),
                  "twin_loaded": any(m.startswith("stratus.twin") for m in sys.modules)}))
"""


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=180)


@pytest.fixture(scope="module")
def finished_incident(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    db = str(tmp_path_factory.mktemp("log") / "stratus.db")
    out = _run(["-c", RUN_INCIDENT, db])
    assert out.returncode == 0, out.stderr
    return db, json.loads(out.stdout.strip().splitlines()[-1])


def test_log_is_read_back_in_another_process(finished_incident: tuple[str, dict[str, Any]]) -> None:
    db, ran = finished_incident
    assert ran["outcome"] == "resolved" and ran["transactions"]
    out = _run(["-c", READ_LOG, db, ran["id"]])
    assert out.returncode == 0, out.stderr
    log = json.loads(out.stdout.strip().splitlines()[-1])
    assert log["transactions"] == ran["transactions"]
    assert log["report"]["outcome"] == "resolved"
    assert log["next"] == [], "the incident is finished"
    assert log["nodes"][0] == "detect" and log["nodes"][-1] == "report"
    for node in ("begin", "snapshot", "execute", "validate"):
        assert node in log["nodes"], f"{node} is checkpointed"
    assert not log["twin_loaded"], "reading the log needs no twin"
    tx = log["transactions"][0]
    assert tx["snapshot"] and tx["health_before"] and tx["health_after"] and tx["kubectl"]


def test_unknown_incident_reads_as_empty(finished_incident: tuple[str, dict[str, Any]]) -> None:
    db, _ = finished_incident
    code = ("import sys, json\nfrom stratus.api import open_checkpointer\nfrom stratus.graph import build_graph\n"
            "with open_checkpointer(sys.argv[1]) as s:\n"
            "    st = build_graph(checkpointer=s).get_state({'configurable': {'thread_id': 'inc-nope'}})\n"
            "print(json.dumps(st.values))")
    out = _run(["-c", code, db])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip()) == {}


@pytest.mark.skipif(importlib.util.find_spec("stratus.cli") is None, reason="stratus.cli is not written yet")
def test_stratus_log_cli_prints_the_transactions(finished_incident: tuple[str, dict[str, Any]]) -> None:
    db, ran = finished_incident
    out = _run(["-c", "from stratus.cli import app; app()", "log", ran["id"], "--db", db, "--json"])
    assert out.returncode == 0, out.stdout + out.stderr
    for tx in ran["transactions"]:
        assert tx["id"] in out.stdout
        for cmd in tx["kubectl"]:
            assert json.dumps(cmd)[1:-1] in out.stdout or cmd in out.stdout
