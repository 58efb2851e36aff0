"""The report node: outcome, root cause, and the incident-level TNR check (DESIGN §6, last paragraph)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from stratus.agents.report import escalate, report
from stratus.context import Context
from stratus.twin.faults import inject

NS = "test-hotel-reservation"


def tx(n: int, component: str, fault_class: str, kubectl: str, h_before: float, h_after: float,
       status: str = "committed") -> dict[str, Any]:
    return {"id": f"inc-t-tx{n}", "status": status, "kubectl": [kubectl],
            "hypothesis": {"component": component, "fault_class": fault_class},
            "health_before": {"H": h_before}, "health_after": {"H": h_after}}


def state(txs: list[dict[str, Any]], h_detect: float = 0.1, detected: bool = True) -> dict[str, Any]:
    return {"incident_id": "inc-t", "namespace": NS, "detected": detected, "transactions": txs,
            "health_detect": {"H": h_detect}, "eps": 0.005, "reflections": ["r1"],
            "hypotheses": [{"component": "geo", "fault_class": "crash_loop"}]}


def runtime(cluster: Any) -> Any:
    return SimpleNamespace(context=Context(db=":memory:", cluster=cluster))


def test_resolved_report_counts_transactions_and_rollbacks(cluster: Any) -> None:
    txs = [tx(1, "geo", "bad_rollout", "kubectl rollout undo deployment/geo -n x", 0.1, 0.1, "undone"),
           tx(2, "geo", "image_pull", "kubectl set image deployment/geo -n x c=i", 0.1, 0.5)]
    out = report(state(txs), runtime(cluster))
    r = out["report"]
    assert out["phase"] == "resolved" and r["outcome"] == "resolved"
    assert (r["transactions"], r["rollbacks"]) == (2, 1)
    assert r["root_cause"]["fault_class"] == "image_pull"
    assert "kubectl set image deployment/geo" in r["summary"]
    assert r["health_final"] == pytest.approx(0.5, abs=0.005) and not r["tnr_violation"]
    assert r["reasons"] == ["r1"]


def test_final_health_below_detection_is_a_loud_tnr_violation(world: Any, cluster: Any) -> None:
    inject(world, "scale_to_zero", "frontend")
    world.advance(180)
    out = report(state([], h_detect=0.5), runtime(cluster))
    r = out["report"]
    assert r["tnr_violation"] is True
    assert "TNR VIOLATION" in r["summary"]
    assert r["health_final"] < r["health_initial"] - 0.005


def test_escalation_and_no_incident(cluster: Any) -> None:
    esc = escalate({**state([]), "escalation_reason": "5 attempts used"}, runtime(cluster))
    assert esc["phase"] == "escalated" and esc["report"]["outcome"] == "escalated"
    assert "5 attempts used" in esc["report"]["summary"]
    assert esc["report"]["root_cause"] == {"component": "geo", "fault_class": "crash_loop"}
    none = report(state([], detected=False), runtime(cluster))
    assert none["report"]["outcome"] == "no_incident" and none["phase"] == "no_incident"
    assert "health_latest" not in none, "no measurement is taken when nothing was detected"


def test_summary_names_the_fix_of_the_root_cause(cluster: Any) -> None:
    txs = [tx(1, "mongodb-rate", "unschedulable", "kubectl patch deployment/mongodb-rate -n x", 0.2, 0.4),
           tx(2, "search", "crash_loop", "kubectl rollout restart deployment/search -n x", 0.4, 0.4)]
    r = report(state(txs), runtime(cluster))["report"]
    assert r["root_cause"]["component"] == "mongodb-rate"
    assert "fixed by kubectl patch deployment/mongodb-rate" in r["summary"], r["summary"]


def test_an_escalation_hands_over_what_it_found(world: Any, cluster: Any) -> None:
    inject(world, "scale_to_zero", "geo")
    world.advance(180)
    kept = tx(1, "search", "crash_loop", "kubectl apply -n x -f -\napiVersion: v1\nkind: ConfigMap", 0.2, 0.3)
    hyps = [{"component": "geo", "fault_class": "scaled_to_zero", "summary": "0 replicas wanted",
             "evidence": ["Deployment geo: replicas 0", "search: errors calling geo"]},
            {"component": "search", "fault_class": "crash_loop"}]
    esc = escalate({**state([kept]), "hypotheses": hyps, "escalation_reason": "no untried plan"}, runtime(cluster))
    summary = esc["report"]["summary"]
    assert "Still unhealthy: " in summary and "geo" in summary.split("Still unhealthy: ")[1].split(".")[0]
    assert "Found: scaled_to_zero at geo (0 replicas wanted); evidence: Deployment geo: replicas 0" in summary
    assert "Found: crash_loop at search." in summary
    assert "Committed and kept: kubectl apply -n x -f -." in summary, "an inline manifest is not quoted whole"
    assert "apiVersion" not in summary
