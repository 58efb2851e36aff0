"""The benchmark's baselines: STRATUS's own agents without the TNR gate, as graphs of their own.

- ``retry``: the STRATUS loop, but every change is committed as it stands (the TNR verdict is recorded,
  not enforced, and a settling change is not watched); still-open incidents go round again.
- ``oneshot``: the same nodes, one transaction (the runner sets ``max_attempts`` to 1), then report.

    START -> detect -> diagnose -> plan_mitigation -> begin -> snapshot -> [approve] -> execute
          -> validate (ungated) -> report | diagnose (retry, still open) | undo (crashed) ; ...

Both reuse the agents' node functions and the production routers, except at ``validate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from stratus.agents.detection import detect
from stratus.agents.diagnosis import diagnose
from stratus.agents.mitigation import approve, begin, execute, judge, plan_mitigation, snapshot
from stratus.agents.report import escalate, report
from stratus.agents.undo import undo
from stratus.context import Context
from stratus.graph import (
    after_approve,
    after_detect,
    after_plan,
    after_snapshot,
    after_undo,
    after_validate,
    build_graph,
    recursion_limit,
)
from stratus.state import IncidentInput, IncidentOutput, IncidentState


def validate_ungated(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Measure the change and record the TNR verdict, then commit it whatever the verdict."""
    return judge(state, runtime, gate=False)


def after_validate_oneshot(state: IncidentState) -> Literal["report", "undo"]:
    """One shot: report after the transaction; only a crashed one (never judged) is undone first."""
    return "undo" if state["transactions"][-1]["status"] != "committed" else "report"


def _build(route_validate: Callable[..., Any], checkpointer: Any = None) -> Any:
    g = StateGraph(IncidentState, input_schema=IncidentInput, output_schema=IncidentOutput,
                   context_schema=Context)
    g.add_node("detect", detect)
    g.add_node("diagnose", diagnose)
    g.add_node("plan_mitigation", plan_mitigation)
    g.add_node("approve", approve)
    g.add_node("begin", begin)
    g.add_node("snapshot", snapshot)
    g.add_node("execute", execute)
    g.add_node("validate", validate_ungated)
    g.add_node("undo", undo)
    g.add_node("escalate", escalate)
    g.add_node("report", report)

    g.add_edge(START, "detect")
    g.add_conditional_edges("detect", after_detect)
    g.add_edge("diagnose", "plan_mitigation")
    g.add_conditional_edges("plan_mitigation", after_plan)
    g.add_conditional_edges("approve", after_approve)
    g.add_edge("begin", "snapshot")
    g.add_conditional_edges("snapshot", after_snapshot)
    g.add_edge("execute", "validate")
    g.add_conditional_edges("validate", route_validate)
    g.add_conditional_edges("undo", after_undo)
    g.add_edge("escalate", END)
    g.add_edge("report", END)
    return g.compile(checkpointer=checkpointer).with_config(recursion_limit=recursion_limit(Context()))


def build_retry(checkpointer: Any = None) -> Any:
    """Compile the ``retry`` baseline: change, commit, and go round again while the incident is open."""
    return _build(after_validate, checkpointer)


def build_oneshot(checkpointer: Any = None) -> Any:
    """Compile the ``oneshot`` baseline: one change, committed, then the report."""
    return _build(after_validate_oneshot, checkpointer)


GRAPHS: dict[str, Callable[..., Any]] = {"stratus": build_graph, "oneshot": build_oneshot, "retry": build_retry}
"""Graph builder of each agent the benchmark compares (the contract names of DESIGN §9)."""
