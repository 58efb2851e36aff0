"""``stratus log`` over a SQLite checkpoint file: ``--list`` and ``INCIDENT --json``, read through the
checkpointer's API, plus ``stratus demo`` leaving an incident that ``stratus log`` reads back.

Incidents are written by ``bench.runner.run_scenario`` (the path ``run-scenario --db`` takes) and read
in process with typer's runner.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stratus.bench.runner import run_scenario
from stratus.bench.scenarios import parse_scenario
from stratus.cli import app
from stratus.context import Context

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    """A SQLite store holding, oldest first: a resolved incident, a control with no incident, and an
    incident waiting for approval (approval always, no one to answer)."""
    db = str(tmp_path_factory.mktemp("log") / "stratus.db")
    noop = parse_scenario({"id": "t-noop", "app": "hotel-reservation", "seed": 1, "expect": {"detected": False}})
    rows = [run_scenario(SCENARIOS / "hotel-geo-network-policy-block.yaml", db=db),
            run_scenario(noop, db=db),
            run_scenario(SCENARIOS / "hotel-profile-scale-to-zero.yaml", db=db,
                         context=Context(db=db, approval="always"))]
    return db, rows


def test_log_list_json_has_every_incident_latest_first(store: tuple[str, list[dict[str, Any]]]) -> None:
    db, rows = store
    out = runner.invoke(app, ["log", "--list", "--json", "--db", db])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.stdout)
    assert [r["incident_id"] for r in listed] == [r["incident_id"] for r in reversed(rows)]
    waiting, noop, resolved = listed
    assert waiting["outcome"] == "waiting: approve" and waiting["transactions"] == 1  # snapshotted, not applied
    assert noop["outcome"] == "no_incident" and noop["transactions"] == 0
    assert resolved["outcome"] == "resolved" and resolved["namespace"] == "test-hotel-reservation"
    assert resolved["transactions"] == rows[0]["transactions"] and resolved["rollbacks"] == rows[0]["rollbacks"]
    assert all(r["created_at"] for r in listed)


def test_log_list_table_names_every_incident(store: tuple[str, list[dict[str, Any]]]) -> None:
    db, rows = store
    out = runner.invoke(app, ["log", "--list", "--db", db])
    assert out.exit_code == 0, out.output
    assert f"incidents in {db}" in out.stdout
    for row in rows:
        assert row["incident_id"] in out.stdout


def test_log_json_is_the_incident_state(store: tuple[str, list[dict[str, Any]]]) -> None:
    db, rows = store
    resolved = rows[0]
    out = runner.invoke(app, ["log", resolved["incident_id"], "--db", db, "--json"])
    assert out.exit_code == 0, out.output
    log = json.loads(out.stdout)
    assert log["incident_id"] == resolved["incident_id"] and log["next"] == []
    assert log["phase"] == "resolved" and log["report"]["outcome"] == "resolved"
    assert [k for t in log["transactions"] for k in t["kubectl"]] == resolved["actions"]
    assert log["health_detect"]["H"] == resolved["health_initial"] and log["eps"] > 0
    assert {a["labels"]["alertname"] for a in log["alerts"]}


def test_log_json_of_a_waiting_incident_names_the_pending_node(store: tuple[str, list[dict[str, Any]]]) -> None:
    db, rows = store
    out = runner.invoke(app, ["log", rows[2]["incident_id"], "--db", db, "--json"])
    assert out.exit_code == 0, out.output
    log = json.loads(out.stdout)
    assert log["next"] == ["approve"] and log["report"] is None


def test_log_of_an_unknown_incident_exits_1(store: tuple[str, list[dict[str, Any]]]) -> None:
    db, _ = store
    out = runner.invoke(app, ["log", "inc-nope", "--db", db, "--json"])
    assert out.exit_code == 1 and out.stdout == ""
    assert "no incident 'inc-nope'" in out.stderr


def test_log_without_an_id_or_a_store(tmp_path: Path) -> None:
    assert runner.invoke(app, ["log", "--db", str(tmp_path / "x.db")]).exit_code == 2
    out = runner.invoke(app, ["log", "inc-x", "--db", str(tmp_path / "x.db")])
    assert out.exit_code == 1 and "no checkpoint store" in out.stderr
    assert not (tmp_path / "x.db").exists()


def test_demo_leaves_an_incident_log_reads_back(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    out = runner.invoke(app, ["demo", "--fault", "service_target_port", "--target", "geo", "--noise", "none",
                              "--db", db])
    assert out.exit_code == 0, out.output
    assert "alerts" in out.stdout and "validate" in out.stdout and "incident report" in out.stdout
    assert "oracle says mitigated" in out.stdout and "(1 committed, 0 rolled back)" in out.stdout
    incident = re.search(r"stratus log (demo-[0-9a-f]{10})", out.stdout)
    assert incident, out.stdout
    log = json.loads(runner.invoke(app, ["log", incident[1], "--db", db, "--json"]).stdout)
    assert log["report"]["outcome"] == "resolved" and len(log["transactions"]) == 1
