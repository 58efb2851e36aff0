"""TNR attribution on the twin (DESIGN §6): a verdict weighs what the change could have affected and what
was not already developing at BEGIN; progress is a symptom that cleared or H that rose, not an alert clock
reset; health at detection is the health since the symptom began; the recovery watch forgives a bounded
dip only. Each scenario injects faults with the twin and applies the plan through the graph's own nodes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from stratus.agents import detection, mitigation
from stratus.api import invoke_graph
from stratus.context import Context
from stratus.policies.rules import RulesPolicy
from stratus.state import HealthReport, Hypothesis, Plan
from stratus.tools.kubectl import parse
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import inject

NS = "test-hotel-reservation"
GRANT_GEO = (f"kubectl exec deployment/mongodb-geo -n {NS} -- mongo --eval "
             "\"db.getSiblingDB('admin').grantRolesToUser('admin',[{role:'readWrite',db:'geo-db'}])\"")


def transaction(cluster: Any, commands: list[str], **knobs: Any) -> dict[str, Any]:
    """Run one plan through begin, snapshot, execute and validate; returns the judged transaction."""
    runtime = SimpleNamespace(context=Context(db=":memory:", cluster=cluster, **knobs))
    state: dict[str, Any] = {"incident_id": "inc-test", "namespace": NS, "eps": 0.005, "transactions": [],
                             "plan": [parse(c).model_dump() for c in commands],
                             "current_hypothesis": {"plan_key": "test"}}
    for node in (mitigation.begin, mitigation.snapshot, mitigation.execute, mitigation.validate):
        out = node(state, runtime)  # type: ignore[arg-type]
        for key, value in out.items():
            if key == "transactions":
                txs = state["transactions"]
                for tx in value:
                    if txs and txs[-1]["id"] == tx["id"]:
                        txs[-1] = tx
                    else:
                        txs.append(tx)
            else:
                state[key] = value
    return state["transactions"][-1]


def test_symptoms_developing_at_begin_are_not_blamed_on_a_correct_fix(world: Any, cluster: Any,
                                                                       twin_helpers: Any) -> None:
    """The search Service breaks while geo's database role is being fixed: rate starves (its alerts were
    pending at BEGIN), which the geo fix could not have caused."""
    inject(world, "revoke_db_role", "mongodb-geo")
    inject(world, "service_target_port", "search")
    twin_helpers.advance_until_alerts(world)
    world.advance(60)
    tx = transaction(cluster, [GRANT_GEO, f"kubectl rollout restart deployment/geo -n {NS}"])
    assert tx["verdict"] == "commit", tx["verdict_reason"]
    assert "not attributed to the change: rate" in tx["verdict_reason"]
    assert "pod:geo" not in tx["health_after"]["unhealthy"], "the fix did clear geo's own symptom"


def test_a_restart_that_only_resets_alert_clocks_is_not_progress(world: Any, cluster: Any,
                                                                 twin_helpers: Any) -> None:
    inject(world, "crashing_image", "geo")
    twin_helpers.advance_until_alerts(world)
    world.advance(120)
    tx = transaction(cluster, [f"kubectl rollout restart deployment/geo -n {NS}"])
    assert "pod:geo" in tx["health_after"]["unhealthy"], "the restart fixed nothing"
    assert tx["verdict"] == "ineffective", tx["verdict_reason"]


def test_two_faults_two_correct_halves_both_commit(world: Any, cluster: Any, twin_helpers: Any) -> None:
    """Fixing the entry point lets traffic reach rate's broken database (search errs); fixing rate while
    the entry point is still down starves every backend. Neither half is to blame for the other fault."""
    inject(world, "scale_to_zero", "frontend")
    inject(world, "revoke_db_role", "mongodb-rate")
    twin_helpers.advance_until_alerts(world)
    world.advance(60)
    alerts = [a for a in world.firing() if a["labels"]["alertname"] != "Watchdog"]
    result = invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:"))
    assert [(t["status"], t["verdict"]) for t in result.transactions] == [("committed", "commit")] * 2, \
        [t["verdict_reason"] for t in result.transactions]
    assert result.outcome == "resolved"
    assert world.store.get("Deployment", "frontend", NS)["spec"]["replicas"] == 1


class HarmlessOncePolicy(RulesPolicy):
    """Proposes one harmless change (scale a healthy service to the replicas it has), then stops."""

    def next_plan(self, cluster: Any, namespace: str, hypotheses: Any, tried: Any, *args: Any, **kw: Any) -> Any:
        cmd = f"kubectl scale deployment/user -n {NS} --replicas=1"
        hyp = Hypothesis(component="user", fault_class="unavailable", confidence=0.5, summary="harmless")
        plan = Plan(hypothesis=hyp, actions=[parse(cmd)], expect="no effect", commands=[cmd])
        return None if plan.key in tried else plan


def test_health_at_detection_is_not_diluted_by_samples_before_the_symptom(world: Any, cluster: Any,
                                                                           twin_helpers: Any) -> None:
    inject(world, "nonexistent_node_selector", "profile")
    twin_helpers.advance_until_alerts(world)
    alerts = [a for a in world.firing() if a["labels"]["alertname"] != "Watchdog"]
    runtime = SimpleNamespace(context=Context(db=":memory:", cluster=cluster))
    at_detection = detection.detect({"alerts": alerts, "namespace": NS, "incident_id": "inc-test"},
                                    runtime)  # type: ignore[arg-type]
    h_detect = at_detection["health_detect"]["H"]
    world.advance(240)  # nothing is changed: the symptom just goes on
    steady = detection.detect({"alerts": alerts, "namespace": NS, "incident_id": "inc-test"},
                              runtime)["health_detect"]["H"]  # type: ignore[arg-type]
    assert h_detect == pytest.approx(steady, abs=0.02), "H at detection counted healthy samples"

    other = twin_helpers.warmed_world()
    inject(other, "nonexistent_node_selector", "profile")
    twin_helpers.advance_until_alerts(other)
    alerts = [a for a in other.firing() if a["labels"]["alertname"] != "Watchdog"]
    result = invoke_graph(alerts, cluster=TwinCluster(other),
                          context=Context(db=":memory:", policy=HarmlessOncePolicy()))
    assert result.transactions[0]["verdict"] != "regression", result.transactions[0]["verdict_reason"]
    assert not result.tnr_violation, "a harmless change reported as a TNR violation"


def _report(H: float, unhealthy: list[str]) -> HealthReport:
    return HealthReport(at=0.0, window_s=60.0, availability=1.0, error_ratio=0.0, latency_norm=0.0, H=H,
                        unhealthy=unhealthy)


@pytest.mark.parametrize(("dip_max", "verdict"), [(None, "regression"), (0.5, "commit")],
                         ids=["default bound: a deep dip is judged at once", "a wider bound forgives it"])
def test_the_recovery_watch_forgives_a_bounded_dip_only(dip_max: float | None, verdict: str, world: Any,
                                                        cluster: Any, monkeypatch: Any) -> None:
    """H at BEGIN 0.30 with geo failing; right after the change H is 0.05 (a dip of 0.25, nothing new
    broken), and it would recover to 0.45 within the watch."""
    before = _report(0.30, ["pod:geo", "errors:search"])
    readings = iter([_report(0.05, ["pod:geo", "errors:search"]), _report(0.45, ["pod:geo"]),
                     _report(0.45, ["pod:geo"])] + [_report(0.45, ["pod:geo"])] * 20)
    monkeypatch.setattr(mitigation, "assess", lambda *a, **k: next(readings))
    monkeypatch.setattr(mitigation, "with_current_h", lambda report, *a: report, raising=False)
    ctx = Context(db=":memory:", cluster=cluster) if dip_max is None else \
        Context(db=":memory:", cluster=cluster, recovery_dip_max=dip_max)
    tx = {"id": "tx1", "attempt": 1, "namespace": NS, "status": "applied", "eps": 0.005,
          "health_before": before.model_dump(), "actions": [parse(f"kubectl rollout restart deployment/geo -n {NS}")
                                                           .model_dump()], "results": [{"ok": True}]}
    out = mitigation.validate({"transactions": [tx], "namespace": NS, "incident_id": "inc-test"},
                              SimpleNamespace(context=ctx))  # type: ignore[arg-type]
    assert out["transactions"][0]["verdict"] == verdict, out["transactions"][0]["verdict_reason"]


def test_a_relaxed_admission_rule_reaches_only_the_pods_it_let_start(world: Any, cluster: Any) -> None:
    """Deleting a quota or a LimitRange, or uncordoning a node, changes no running pod: its reach is the
    pods created after it (and a node's own pods), not the whole namespace."""
    from stratus.tools.analyzers import View
    from stratus.tools.attribution import relaxes_admission, touched_by

    delete_quota = parse(f"kubectl delete resourcequota/compute -n {NS}")
    uncordon = parse("kubectl uncordon kind-worker")
    assert relaxes_admission(delete_quota) and relaxes_admission(uncordon)
    assert not relaxes_admission(parse("kubectl cordon kind-worker"))
    assert not relaxes_admission(parse("kubectl taint nodes kind-worker maintenance=on:NoSchedule"))
    since = cluster.now()
    view = View.read(cluster, NS)
    assert touched_by(cluster, view, delete_quota, [], since) == set()
    assert touched_by(cluster, view, delete_quota, []) is None, "without the start time the reach is unknown"
    on_worker = {view.deployment_of_pod(p) for p in view.pods if p["spec"].get("nodeName") == "kind-worker"}
    assert on_worker and touched_by(cluster, view, uncordon, [], since) == on_worker
    world.advance(5)
    assert cluster.apply(parse(f"kubectl rollout restart deployment/geo -n {NS}")).ok
    world.advance(30)
    assert touched_by(cluster, View.read(cluster, NS), delete_quota, [], since) == {"geo"}
