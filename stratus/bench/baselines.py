"""The benchmark's baselines: STRATUS's own agents without the TNR gate, as graphs of their own.

- ``retry``: the STRATUS loop, but every change is committed as it stands (the TNR verdict is recorded,
  not enforced, and a settling change is not watched); still-open incidents go round again.
- ``oneshot``: the same nodes, one transaction (the runner sets ``max_attempts`` to 1), then report.
- ``restart``: no diagnosis at all: one transaction that rollout-restarts every Deployment behind an
  unhealthy component (pods not Ready, services erring, firing alerts), committed as it stands. Its
  score is what luck earns on the suite.

    START -> detect -> plan_restarts -> begin -> snapshot -> [approve] -> execute -> validate (ungated)
          -> report | undo (crashed) ; no plan -> escalate

    START -> detect -> diagnose -> plan_mitigation -> begin -> snapshot -> [approve] -> execute
          -> validate (ungated) -> report | diagnose (retry, still open) | undo (crashed) ; ...

Both are the production wiring (``stratus.graph.wire``) with their own ``validate`` node and router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from stratus.agents.common import cluster_of, context_of
from stratus.agents.detection import detect
from stratus.agents.mitigation import approve, begin, execute, judge, snapshot
from stratus.agents.report import escalate, report
from stratus.agents.undo import undo
from stratus.cluster.actions import Action
from stratus.context import Context
from stratus.graph import (
    after_approve,
    after_detect,
    after_plan,
    after_snapshot,
    after_undo,
    after_validate,
    build_graph,
    compile_graph,
    wire,
)
from stratus.state import Hypothesis, IncidentInput, IncidentOutput, IncidentState
from stratus.tools.health import measure, unhealthy_components


def validate_ungated(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Measure the change and record the TNR verdict, then commit it whatever the verdict."""
    return judge(state, runtime, gate=False)


def after_validate_oneshot(state: IncidentState) -> Literal["report", "undo"]:
    """One shot: report after the transaction; only a crashed one (never judged) is undone first."""
    return "undo" if state["transactions"][-1]["status"] != "committed" else "report"


def _build(route_validate: Callable[..., Any], checkpointer: Any = None) -> Any:
    return compile_graph(wire(validate_ungated, route_validate), checkpointer)


def build_retry(checkpointer: Any = None) -> Any:
    """Compile the ``retry`` baseline: change, commit, and go round again while the incident is open."""
    return _build(after_validate, checkpointer)


def build_oneshot(checkpointer: Any = None) -> Any:
    """Compile the ``oneshot`` baseline: one change, committed, then the report."""
    return _build(after_validate_oneshot, checkpointer)


def plan_restarts(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Restart every Deployment whose component is unhealthy now; nothing else, and only once."""
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    ns = state["namespace"]
    if int(state.get("attempts", 0)) >= 1:
        return {"phase": "plan", "plan": [], "escalation_reason": "restarted once; still unhealthy"}
    unhealthy = unhealthy_components(measure(cluster, ctx, ns).unhealthy)
    deployments = {d["metadata"]["name"] for d in cluster.list("Deployment", ns)}
    targets = sorted(unhealthy & deployments)
    if not targets:
        return {"phase": "plan", "plan": [], "escalation_reason": "no unhealthy Deployment to restart"}
    actions = [Action(verb="rollout_restart", kind="Deployment", name=t, namespace=ns,
                      reason="unhealthy") for t in targets]
    hyp = Hypothesis(component=targets[0], fault_class="restart_unhealthy", confidence=0.1,
                     summary=f"unhealthy: {', '.join(targets)}")
    current = {**hyp.model_dump(), "plan_key": f"restart:{'|'.join(targets)}", "expect": "pods come back healthy"}
    return {"phase": "plan", "plan": [a.model_dump() for a in actions], "current_hypothesis": current,
            "hypotheses": [hyp.model_dump()]}


def build_restart(checkpointer: Any = None) -> Any:
    """Compile the ``restart`` baseline: restart what is unhealthy, commit, report."""
    g = StateGraph(IncidentState, input_schema=IncidentInput, output_schema=IncidentOutput,
                   context_schema=Context)
    for name, node in (("detect", detect), ("plan_restarts", plan_restarts), ("approve", approve),
                       ("begin", begin), ("snapshot", snapshot), ("execute", execute),
                       ("validate", validate_ungated), ("undo", undo), ("escalate", escalate), ("report", report)):
        g.add_node(name, node)
    g.add_edge(START, "detect")
    g.add_conditional_edges("detect", after_detect, {"diagnose": "plan_restarts", "report": "report"})
    g.add_conditional_edges("plan_restarts", after_plan)
    g.add_edge("begin", "snapshot")
    g.add_conditional_edges("snapshot", after_snapshot, {"execute": "execute", "approve": "approve",
                                                         "diagnose": "escalate"})
    g.add_conditional_edges("approve", after_approve, {"execute": "execute", "begin": "begin",
                                                       "diagnose": "escalate"})
    g.add_edge("execute", "validate")
    g.add_conditional_edges("validate", after_validate_oneshot)
    g.add_conditional_edges("undo", after_undo, {"diagnose": "escalate", "escalate": "escalate",
                                                 "report": "report"})
    g.add_edge("escalate", END)
    g.add_edge("report", END)
    return compile_graph(g, checkpointer)


GRAPHS: dict[str, Callable[..., Any]] = {"stratus": build_graph, "oneshot": build_oneshot, "retry": build_retry,
                                         "restart": build_restart}
"""Graph builder of each agent the benchmark compares (the contract names of DESIGN §9)."""
