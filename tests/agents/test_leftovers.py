"""Closing an incident: a change that still takes something away once every symptom is gone is a leftover,
routine work is not; the journal keeps its healthy baseline while an incident is open; leftovers keep the
graph going (or escalate by name) instead of a "resolved"."""

from __future__ import annotations

import copy
from typing import Any

from stratus.agents.closing import account, leftover_hypotheses
from stratus.context import Context
from stratus.graph import after_undo, after_validate
from stratus.policies.rules import RulesPolicy
from stratus.tools.analyzers import View, assess
from stratus.tools.analyzers.leftovers import leftovers
from stratus.tools.journal import ChangeJournal
from tests.conftest import act
from tests.conftest import watch_journal as watch

NS = "test-hotel-reservation"


def edit(world: Any, kind: str, name: str, change: Any) -> None:
    """An operator's edit straight to the store (no STRATUS marker on it)."""
    obj = copy.deepcopy(world.store.get(kind, name, NS))
    change(obj)
    world.store.update(obj)


def routine_work(world: Any) -> None:
    """A new image tag, one more replica, an allow-all egress policy: nothing taken away."""
    def image(d: dict[str, Any]) -> None:
        c = d["spec"]["template"]["spec"]["containers"][0]
        world.app.images.setdefault(c["image"].split(":")[0] + ":v9", copy.deepcopy(world.app.images[c["image"]]))
        c["image"] = c["image"].split(":")[0] + ":v9"
    edit(world, "Deployment", "rate", image)
    edit(world, "Deployment", "search", lambda d: d["spec"].__setitem__("replicas", 2))
    world.store.create(policy("allow-egress", {"policyTypes": ["Egress"], "egress": [{}]}))


def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": NS},
            "spec": {"podSelector": {"matchLabels": {"io.kompose.service": "user"}}, **spec}}


def silent_faults(world: Any, cluster: Any) -> None:
    """Faults that leave U empty for now: every node tainted under running pods, a workload nobody calls
    scaled to zero, a Deployment deleted, a quota created, a deny-all ingress policy on a bystander."""
    for n in cluster.list("Node"):
        act(cluster, "taint", "Node", n["metadata"]["name"],
            add=[{"key": "maintenance", "value": "x", "effect": "NoSchedule"}])
    edit(world, "Deployment", "recommendation", lambda d: d["spec"].__setitem__("replicas", 0))
    act(cluster, "delete", "Deployment", "reservation")
    act(cluster, "create", "ResourceQuota", "compute", manifest={
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": NS},
        "spec": {"hard": {"limits.memory": "4Gi"}}})
    world.store.create(policy("deny-user", {"policyTypes": ["Ingress"]}))


def test_silent_changes_are_leftovers_and_routine_work_is_not(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    detected_at = world.clock.now
    journal.hold("inc-1", detected_at)
    routine_work(world)
    watch(world, cluster, journal, 60)
    assert leftovers(View.read(cluster, NS, journal), detected_at) == []  # routine work alone is no leftover
    silent_faults(world, cluster)
    watch(world, cluster, journal, 30)
    found = leftovers(View.read(cluster, NS, journal), detected_at)
    by_object = {(f["kind"], f["name"]): f["why"] for f in found}
    nodes = {n["metadata"]["name"] for n in cluster.list("Node")}
    assert set(by_object) == {("Node", n) for n in nodes} | {("Deployment", "recommendation"),
                                                            ("Deployment", "reservation"),
                                                            ("ResourceQuota", "compute"),
                                                            ("NetworkPolicy", "deny-user")}
    assert "scaled to 0 (from 1)" in by_object[("Deployment", "recommendation")]
    assert "deleted" in by_object[("Deployment", "reservation")]
    hyps = leftover_hypotheses({"leftovers": found, "health_latest": {"unhealthy": []}})  # type: ignore[typeddict-item]
    assert hyps is not None and {h.fault_class for h in hyps} == {"recent_change"}
    # while a symptom is open, Diagnosis looks at the symptoms, not at the leftovers
    assert leftover_hypotheses({"leftovers": found, "health_latest": {"unhealthy": ["pod:geo"]}}) is None  # type: ignore[typeddict-item]
    # each leftover has a plan that reverts it
    policy = RulesPolicy(journal)
    plan = policy.next_plan(cluster, NS, hyps, {}, None)
    assert plan is not None and plan.hypothesis.fault_class == "recent_change"


def test_the_healthy_baseline_is_held_while_an_incident_is_open(world: Any, cluster: Any) -> None:
    """A taint nobody notices stays out of the last-known-healthy versions until the incident closes."""
    journal = ChangeJournal([NS], healthy_dwell_s=60.0)
    watch(world, cluster, journal, 120)
    node = cluster.list("Node")[0]["metadata"]["name"]
    journal.hold("inc-1", world.clock.now)
    act(cluster, "taint", "Node", node, add=[{"key": "maintenance", "value": "x", "effect": "NoSchedule"}])
    watch(world, cluster, journal, 180)  # healthy all along: would be promoted without the hold
    assert not assess(cluster, Context(db=":memory:"), NS).unhealthy
    assert not (journal.last_healthy("Node", node, None)["spec"].get("taints"))
    assert leftovers(View.read(cluster, NS, journal), world.clock.now)
    journal.release("inc-1")
    watch(world, cluster, journal, 90)
    assert journal.last_healthy("Node", node, None)["spec"]["taints"][0]["key"] == "maintenance"
    assert leftovers(View.read(cluster, NS, journal), world.clock.now) == []


def _routing_state(leftover: list[dict[str, Any]], status: str = "committed") -> dict[str, Any]:
    return {"transactions": [{"status": status, "restore_mismatch": []}], "health_latest": {"unhealthy": []},
            "leftovers": leftover, "attempts": 1, "remaining_steps": 100}


def test_leftovers_keep_the_incident_open_and_are_named_when_escalated() -> None:
    class Runtime:
        context = Context(db=":memory:")
    left = [{"kind": "Node", "name": "kind-worker", "component": "kind-worker", "change": 3,
             "why": "Node kind-worker still has the taint maintenance"}]
    assert after_validate(_routing_state(left), Runtime()) == "diagnose"  # type: ignore[arg-type]
    assert after_validate(_routing_state([]), Runtime()) == "report"  # type: ignore[arg-type]
    assert after_undo(_routing_state(left, "undone"), Runtime()) == "diagnose"  # type: ignore[arg-type]
    assert after_undo(_routing_state([], "undone"), Runtime()) == "report"  # type: ignore[arg-type]
    assert "Node kind-worker still has the taint maintenance" in account({"leftovers": left})  # type: ignore[typeddict-item]
