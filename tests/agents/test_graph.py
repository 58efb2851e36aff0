"""The STRATUS graph end to end on the twin: TNR routes a harmful change to Undo, crashes are recovered,
human approval interrupts before any mutation, and budgets end in escalation instead of loops.

A policy double (a ``RulesPolicy`` subclass whose first plan is harmful) stands in for a reasoning
mistake; it is passed in as ``Context.policy``.
"""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from stratus.api import invoke_graph
from stratus.cluster.mutate import clean_manifest
from stratus.context import Context
from stratus.graph import build_graph
from stratus.policies.base import Policy
from stratus.policies.rules import RulesPolicy
from stratus.state import Hypothesis, Plan, TriedPlans
from stratus.tools.kubectl import parse
from stratus.twin.faults import inject

NS = "test-hotel-reservation"
ENTRY_DOWN = f"kubectl scale deployment/frontend -n {NS} --replicas=0"
BAD_IMAGE = f"kubectl set image deployment/user -n {NS} hotel-reserv-user=yinfangchen/hotelreservation:nope"


class HarmfulFirstPolicy(RulesPolicy):
    """Proposes ``harm`` first (a confident but harmful plan), then behaves like the rules policy."""

    def __init__(self, harm: str = ENTRY_DOWN) -> None:
        self.harm = harm

    def next_plan(self, cluster: Any, namespace: str, hypotheses: list[Hypothesis], tried: TriedPlans,
                  *args: Any, **kwargs: Any) -> Any:
        action = parse(self.harm)
        hyp = Hypothesis(component=action.name, fault_class="unavailable", confidence=0.99,
                         summary="test double: a confident but harmful plan")
        harm = Plan(hypothesis=hyp, actions=[action], expect="harmful on purpose", commands=[self.harm])
        if harm.key not in tried:
            return harm
        return super().next_plan(cluster, namespace, hypotheses, tried, *args, **kwargs)


def faulty(world: Any, helpers: Any, fault: str, target: str) -> list[dict[str, Any]]:
    inject(world, fault, target)
    helpers.advance_until_alerts(world)
    alerts = [a for a in world.firing() if a["labels"]["alertname"] != "Watchdog"]
    assert alerts
    return alerts


def history_nodes(saver: Any, thread_id: str) -> list[str]:
    """Names of the nodes the thread ran, oldest first, read back from the checkpoints."""
    graph = build_graph(checkpointer=saver)
    names = []
    for snap in graph.get_state_history({"configurable": {"thread_id": thread_id}}):
        names.extend(t.name for t in snap.tasks)
    return list(reversed(names))


@pytest.mark.parametrize(("fault", "target", "harm", "why"), [
    ("crashing_image", "geo", ENTRY_DOWN, "H fell"),
    ("crashing_image", "geo", BAD_IMAGE, "newly unhealthy: "),
    ("service_target_port", "geo", ENTRY_DOWN, "H fell"),
], ids=["entry point down", "unrelated image broken", "entry point down on a low-H incident"])
def test_harmful_first_plan_is_undone_then_the_incident_resolves(
        fault: str, target: str, harm: str, why: str, world: Any, cluster: Any, twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, fault, target)
    saver = InMemorySaver()
    result = invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:", policy=HarmfulFirstPolicy(harm)),
                          checkpointer=saver)

    first = result.transactions[0]
    assert first["kubectl"] == [harm]
    assert (first["status"], first["verdict"]) == ("undone", "regression")
    assert why in first["verdict_reason"]
    assert first["restore_ok"] is True
    assert first["health_restored"]["H"] >= first["health_before"]["H"] - first["eps"]
    touched = parse(harm).name
    snap = next(m for m in first["snapshot"] if m["metadata"]["name"] == touched)
    assert clean_manifest(cluster.get("Deployment", touched, NS))["spec"] == snap["spec"]

    assert result.reflections and "Attempt 1" in result.reflections[0]
    assert "regression" in result.reflections[0] and harm in result.reflections[0]
    later = result.transactions[1:]
    assert any(t["status"] == "committed" for t in later)
    assert all(harm not in t["kubectl"] for t in later), "an undone plan is not retried"
    assert result.outcome == "resolved" and result.rollbacks == 1
    assert not result.tnr_violation
    assert result.health_final >= result.health_initial

    nodes = history_nodes(saver, result.incident_id)
    assert "undo" in nodes
    undo_at = nodes.index("undo")
    assert nodes[undo_at - 1] == "validate" and nodes[undo_at + 1] == "diagnose"
    assert [p["phase"] for p in result.health_history].count("undo") == 1


def test_attempt_budget_escalates_after_the_undo(world: Any, cluster: Any, twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "crashing_image", "geo")
    ctx = Context(db=":memory:", max_attempts=1, policy=HarmfulFirstPolicy(ENTRY_DOWN))
    result = invoke_graph(alerts, cluster=cluster, context=ctx)
    assert result.outcome == "escalated"
    assert [t["status"] for t in result.transactions] == ["undone"]
    assert "Escalated" in result.summary
    assert cluster.get("Deployment", "frontend", NS)["spec"]["replicas"] == 1, "the harm was undone"


UNDONE_THEN_FIXED = ["detect", "diagnose", "plan_mitigation", "begin", "snapshot", "execute", "validate", "undo",
                     "diagnose", "plan_mitigation", "begin", "snapshot", "execute", "validate", "report"]


@pytest.mark.parametrize(("max_steps", "ran"), [
    (8, UNDONE_THEN_FIXED[:8] + ["escalate"]),  # 8 nodes run when Undo's router looks: over budget
    (9, UNDONE_THEN_FIXED[:10] + ["escalate"]),  # caught at the next check, after plan_mitigation
    (10, UNDONE_THEN_FIXED[:10] + ["escalate"]),
    (11, UNDONE_THEN_FIXED),  # the second transaction resolves the incident before any check fails
])
def test_step_budget_escalates_at_the_first_check_past_max_steps(
        max_steps: int, ran: list[str], world: Any, cluster: Any, twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "crashing_image", "geo")
    nodes: list[str] = []
    ctx = Context(db=":memory:", max_steps=max_steps, policy=HarmfulFirstPolicy(ENTRY_DOWN))
    result = invoke_graph(alerts, cluster=cluster, context=ctx, on_update=lambda node, _u: nodes.append(node))
    assert nodes == ran
    assert result.steps == len(ran)
    assert result.outcome == ("resolved" if ran[-1] == "report" else "escalated")


def test_step_budget_counts_across_an_approval_resume(world: Any, cluster: Any, twin_helpers: Any) -> None:
    """LangGraph counts steps per run; the incident's budget spans the runs before and after a resume."""
    alerts = faulty(world, twin_helpers, "scale_to_zero", "profile")
    saver = InMemorySaver()
    ctx = Context(db=":memory:", approval="always", max_steps=6)
    nodes: list[str] = []
    kw: dict[str, Any] = {"cluster": cluster, "context": ctx, "checkpointer": saver, "thread_id": "inc-budget",
                          "on_update": lambda node, _u: nodes.append(node)}
    assert invoke_graph(alerts, **kw).interrupted
    result = invoke_graph(alerts, resume="reject", **kw)
    assert nodes == ["detect", "diagnose", "plan_mitigation", "begin", "snapshot", "approve", "diagnose",
                     "plan_mitigation", "escalate"]
    assert result.outcome == "escalated" and result.steps == 9


def test_a_policy_factory_builds_the_policy_for_each_node_run(world: Any, cluster: Any,
                                                             twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "scale_to_zero", "profile")
    built: list[dict[str, Any]] = []

    def factory(ctx: Context, state: Any) -> Policy:
        built.append(dict(state))
        return RulesPolicy()

    result = invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:", policy=factory))
    assert result.outcome == "resolved"
    assert len(built) == 3 and all(s["namespace"] == NS for s in built)  # detect, diagnose, plan_mitigation
    assert isinstance(HarmfulFirstPolicy(), Policy)


def test_crash_mid_transaction_is_undone_on_resume(tmp_path: Any, world: Any, cluster: Any,
                                                   twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "crashing_image", "geo")
    db = str(tmp_path / "stratus.db")
    cluster.fail_after_applies = 0  # the first real apply raises, as if the process died there
    with pytest.raises(RuntimeError, match="simulated crash"):
        invoke_graph(alerts, cluster=cluster, context=Context(db=db), thread_id="inc-crash")

    cluster.fail_after_applies = None
    result = invoke_graph(alerts, cluster=cluster, context=Context(db=db), thread_id="inc-crash")
    crashed = result.transactions[0]
    assert (crashed["status"], crashed["verdict"]) == ("undone", "crashed")
    assert crashed["restore_ok"] is True
    geo_snapshot = next(m for m in crashed["snapshot"] if m["metadata"]["name"] == "geo")
    assert geo_snapshot["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":app3"), \
        "the undo log was taken before the crash, with the faulty image"
    assert any(t["status"] == "committed" for t in result.transactions[1:])
    assert result.outcome == "resolved"
    assert result.incident_id == "inc-crash"

    again = invoke_graph(alerts, cluster=cluster, context=Context(db=db), thread_id="inc-crash")
    assert again.transactions == result.transactions, "a finished incident is read back, not re-run"


def test_crash_after_a_partial_apply_restores_database_and_objects(tmp_path: Any, world: Any, cluster: Any,
                                                                   twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "revoke_db_role", "mongodb-geo")
    faulty_roles = [dict(r) for r in world.db["mongodb-geo"]["users"]["admin"]["roles"]]
    geo_spec = clean_manifest(cluster.get("Deployment", "geo", NS))["spec"]
    db = str(tmp_path / "stratus.db")
    cluster.fail_after_applies = 1  # grant the role, then die before restarting geo
    with pytest.raises(RuntimeError):
        invoke_graph(alerts, cluster=cluster, context=Context(db=db), thread_id="inc-partial")
    assert world.db["mongodb-geo"]["users"]["admin"]["roles"] != faulty_roles, "half the plan was applied"

    cluster.fail_after_applies = None
    at_undo: list[tuple[Any, Any]] = []

    def watch(node: str, update: dict[str, Any]) -> None:
        if node == "undo" and not at_undo:
            at_undo.append(([dict(r) for r in world.db["mongodb-geo"]["users"]["admin"]["roles"]],
                            clean_manifest(cluster.get("Deployment", "geo", NS))["spec"]))

    result = invoke_graph(alerts, cluster=cluster, context=Context(db=db), thread_id="inc-partial",
                          on_update=watch)
    crashed = result.transactions[0]
    assert (crashed["status"], crashed["verdict"]) == ("undone", "crashed")
    assert len(crashed["kubectl"]) == 2 and len(crashed["inverse"]) == 1
    roles, spec = at_undo[0]
    assert roles == faulty_roles, "the inverse command revoked the half-applied grant"
    assert spec == geo_spec
    assert len(result.transactions) > 1 and result.outcome in ("resolved", "escalated"), "the incident proceeds"


def test_plan_interrupted_by_a_crash_is_retried_after_recovery(tmp_path: Any, world: Any, cluster: Any,
                                                               twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "revoke_db_role", "mongodb-geo")
    db = str(tmp_path / "stratus.db")
    cluster.fail_after_applies = 1
    with pytest.raises(RuntimeError):
        invoke_graph(alerts, cluster=cluster, context=Context(db=db), thread_id="inc-retry")
    cluster.fail_after_applies = None
    result = invoke_graph(alerts, cluster=cluster, context=Context(db=db), thread_id="inc-retry")
    assert result.outcome == "resolved"


def test_approval_interrupts_before_any_change_and_resumes(world: Any, cluster: Any, twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "scale_to_zero", "profile")
    saver = InMemorySaver()
    ctx = Context(db=":memory:", approval="always")
    paused = invoke_graph(alerts, cluster=cluster, context=ctx, checkpointer=saver, thread_id="inc-approve")
    assert paused.interrupted and paused.outcome == "interrupted"
    assert paused.interrupt["actions"][0]["kubectl"] == f"kubectl scale deployment/profile -n {NS} --replicas=1"
    assert paused.interrupt["actions"][0]["dry_run_ok"] is True
    assert paused.interrupt["actions"][0]["guard_ok"] is True and paused.interrupt["actions"][0]["guard"]
    assert paused.interrupt["actions"][0]["inverse"] == [
        "restore Deployment/profile from the snapshot taken before the change"]
    assert cluster.get("Deployment", "profile", NS)["spec"]["replicas"] == 0, "nothing changes before approval"
    assert [t["status"] for t in paused.transactions] == ["snapshotted"], "asked after guard, dry run, undo log"
    assert paused.transactions[0]["snapshot"][0]["spec"]["replicas"] == 0

    done = invoke_graph(alerts, cluster=cluster, context=ctx, checkpointer=saver, thread_id="inc-approve",
                        resume="approve")
    assert done.outcome == "resolved" and not done.interrupted
    assert [t["status"] for t in done.transactions] == ["committed"]
    assert cluster.get("Deployment", "profile", NS)["spec"]["replicas"] == 1


def test_rejected_plan_is_not_applied(world: Any, cluster: Any, twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "scale_to_zero", "profile")
    saver = InMemorySaver()
    ctx = Context(db=":memory:", approval="always")
    invoke_graph(alerts, cluster=cluster, context=ctx, checkpointer=saver, thread_id="inc-reject")
    after = invoke_graph(alerts, cluster=cluster, context=ctx, checkpointer=saver, thread_id="inc-reject",
                         resume="reject")
    assert any("A human rejected" in r for r in after.reflections)
    rejected = [t for t in after.transactions if any("--replicas=1" in k for k in t["kubectl"])]
    assert [(t["status"], t["verdict_reason"], t["results"]) for t in rejected] == \
        [("refused", "a human rejected it", [])]
    assert cluster.get("Deployment", "profile", NS)["spec"]["replicas"] == 0
