"""The loop around a transaction: an unverifiable restore stops the incident at once, an undone plan is
not retried without a reason its reflection names, and a human is asked only about plans the guard and
the server dry run accepted.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from test_graph import NS, HarmfulFirstPolicy, faulty

from stratus.agents.mitigation import tried_plans
from stratus.api import invoke_graph
from stratus.context import Context
from stratus.tools.kubectl import parse
from stratus.twin.cluster import TwinCluster


class RestoreFails(TwinCluster):
    """A backend whose restore silently does nothing (a webhook reverting it, a lost API call)."""

    def restore(self, snapshot: list[dict[str, Any]]) -> None:
        return None


def test_unverifiable_restore_escalates_at_once_with_both_states(world: Any, twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "crashing_image", "geo")
    cluster = RestoreFails(world)
    nodes: list[str] = []
    result = invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:", policy=HarmfulFirstPolicy()),
                          on_update=lambda node, _u: nodes.append(node))
    assert nodes[-2:] == ["undo", "escalate"], nodes
    assert len(result.transactions) == 1, "nothing more is applied to the namespace"
    mismatch = result.transactions[0]["restore_mismatch"]
    assert [m["object"] for m in mismatch] == ["Deployment/frontend"]
    assert mismatch[0]["captured"]["spec"]["replicas"] == 1 and mismatch[0]["observed"]["spec"]["replicas"] == 0
    summary = result.summary
    assert result.outcome == "escalated" and "does not match its undo log" in summary
    assert '"replicas": 1' in summary and '"replicas": 0' in summary, "both states are in the report"


def _tx(key: str, command: str, status: str, verdict: str) -> dict[str, Any]:
    return {"id": key, "attempt": 1, "namespace": NS, "hypothesis": {"plan_key": key},
            "actions": [parse(command).model_dump()], "kubectl": [command], "status": status, "verdict": verdict}


UNDONE = _tx("restart-search", f"kubectl rollout restart deployment/search -n {NS}", "undone", "ineffective")


def test_undone_plan_is_not_retried_after_an_unrelated_commit() -> None:
    elsewhere = _tx("restart-geo", f"kubectl rollout restart deployment/geo -n {NS}", "committed", "commit")
    state: Any = {"namespace": NS, "transactions": [UNDONE, elsewhere]}
    assert "restart-search" in tried_plans(state), "its reflection said: do not repeat"


def test_undone_plan_gets_one_more_try_after_a_commit_on_what_it_touches() -> None:
    there = _tx("scale-search", f"kubectl scale deployment/search -n {NS} --replicas=2", "committed", "commit")
    state: Any = {"namespace": NS, "transactions": [UNDONE, there]}
    assert "restart-search" not in tried_plans(state)
    state["transactions"].append({**UNDONE, "id": "again"})
    assert "restart-search" in tried_plans(state), "only one more try"


def test_an_ineffective_plan_gets_one_more_try_after_a_commit_that_cleared_a_symptom() -> None:
    """In a compound incident another fault can mask a right fix; a commit that clears a component's own
    symptom re-opens plans judged ineffective, and ones judged a regression only when every component they
    made unhealthy is healthy after it; an alert that merely stopped firing re-opens nothing."""
    cleared = {**_tx("restart-geo", f"kubectl rollout restart deployment/geo -n {NS}", "committed", "commit"),
               "health_before": {"unhealthy": ["pod:geo", "alert:KubePodNotReady:geo"]},
               "health_after": {"unhealthy": ["alert:KubePodNotReady:geo"]}}
    assert "restart-search" not in tried_plans({"namespace": NS, "transactions": [UNDONE, cleared]})  # type: ignore[typeddict-item]
    harmful = {**UNDONE, "verdict": "regression"}
    assert "restart-search" in tried_plans({"namespace": NS, "transactions": [harmful, cleared]})  # type: ignore[typeddict-item]
    # a regression is re-opened only when what it made unhealthy is healthy after the later commit
    exposed = {**harmful, "health_before": _health(0.3, ["pod:geo"]),
               "health_after": _health(0.2, ["pod:geo", "pod:search"])}
    assert "restart-search" not in tried_plans({"namespace": NS, "transactions": [exposed, cleared]})  # type: ignore[typeddict-item]
    still = {**cleared, "health_after": {"unhealthy": ["pod:search"]}}
    assert "restart-search" in tried_plans({"namespace": NS, "transactions": [exposed, still]})  # type: ignore[typeddict-item]
    alert_only = {**cleared, "health_before": {"unhealthy": ["alert:KubePodNotReady:geo"]},
                  "health_after": {"unhealthy": []}}
    assert "restart-search" in tried_plans({"namespace": NS, "transactions": [UNDONE, alert_only]})  # type: ignore[typeddict-item]


def _health(h: float, unhealthy: list[str], developing: list[str] | None = None) -> dict[str, Any]:
    return {"at": 0.0, "window_s": 60.0, "availability": 2 * h, "error_ratio": 0.0, "latency_norm": 0.0, "H": h,
            "unhealthy": unhealthy, "developing": developing or []}


def test_a_fix_undone_for_exposing_another_fault_gets_one_more_try_once_that_fault_is_fixed() -> None:
    """user's Service reverted: H fell only because search, OOM-killed already, got more traffic; search's
    fix then commits and clears search's own symptom, so the revert is judged again. A regression that
    made a component unhealthy that was healthy before stays undone."""
    revert = {**_tx("revert-user", f"kubectl rollout restart deployment/user -n {NS}", "undone", "regression"),
              "health_before": _health(0.26, ["errors:frontend", "pod:search"], ["search"]),
              "health_after": _health(0.1, ["errors:frontend", "pod:search", "alert:KubePodCrashLooping:search"])}
    search = {**_tx("fix-search", f"kubectl rollout undo deployment/search -n {NS}", "committed", "commit"),
              "health_before": _health(0.1, ["errors:frontend", "pod:search"]),
              "health_after": _health(0.49, ["alert:NoRequestsReceived:user"])}
    assert "revert-user" not in tried_plans({"namespace": NS, "transactions": [revert, search]})  # type: ignore[typeddict-item]
    again = {**revert, "id": "again"}
    assert "revert-user" in tried_plans({"namespace": NS, "transactions": [revert, search, again]}), \
        "only one more try"  # type: ignore[typeddict-item]
    broke = {**revert, "health_after": _health(0.1, ["errors:frontend", "pod:search", "errors:user"])}
    assert "revert-user" in tried_plans({"namespace": NS, "transactions": [broke, search]})  # type: ignore[typeddict-item]
    unrelated = {**search, "health_before": _health(0.1, ["errors:frontend", "pod:search", "pod:geo"]),
                 "health_after": _health(0.1, ["errors:frontend", "pod:search"])}
    assert "revert-user" in tried_plans({"namespace": NS, "transactions": [revert, unrelated]}), \
        "a commit that cleared a component the revert did not worsen re-opens nothing"  # type: ignore[typeddict-item]


def test_approval_is_asked_only_for_a_plan_the_guard_and_dry_run_accepted(world: Any, cluster: Any,
                                                                         twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "scale_to_zero", "profile")
    missing = f"kubectl scale deployment/no-such-service -n {NS} --replicas=1"
    ctx = Context(db=":memory:", approval="always", policy=HarmfulFirstPolicy(missing))
    paused = invoke_graph(alerts, cluster=cluster, context=ctx, checkpointer=InMemorySaver(), thread_id="inc-dry")
    assert paused.interrupted
    refused, asked = paused.transactions
    assert refused["status"] == "refused" and "server dry run failed" in refused["verdict_reason"]
    assert [a["kubectl"] for a in paused.interrupt["actions"]] == asked["kubectl"] != refused["kubectl"]
    assert all(a["guard_ok"] and a["dry_run_ok"] for a in paused.interrupt["actions"])


def test_approved_plan_is_not_run_when_the_world_changed_while_waiting(world: Any, cluster: Any,
                                                                      twin_helpers: Any) -> None:
    alerts = faulty(world, twin_helpers, "scale_to_zero", "profile")
    saver = InMemorySaver()
    ctx = Context(db=":memory:", approval="always", max_attempts=1)
    kw: dict[str, Any] = {"cluster": cluster, "context": ctx, "checkpointer": saver, "thread_id": "inc-stale"}
    assert invoke_graph(alerts, **kw).interrupted
    cluster.apply(parse(f"kubectl scale deployment/profile -n {NS} --replicas=3"))  # someone else acts
    done = invoke_graph(alerts, resume="approve", **kw)
    tx = done.transactions[0]
    assert tx["status"] == "refused" and "changed while waiting" in tx["verdict_reason"] and not tx["results"]
    assert cluster.get("Deployment", "profile", NS)["spec"]["replicas"] == 3
