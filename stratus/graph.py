"""The STRATUS state graph: Detection -> Diagnosis -> Mitigation (as TNR transactions) -> Undo.

Node functions live in ``stratus.agents``; this module only wires them. Routing functions return
``Literal`` node names so LangGraph Studio draws every edge. The graph takes ``IncidentInput`` (alerts,
namespace, incident id) and returns ``IncidentOutput`` (report, transactions, ...).

The step budget is LangGraph's recursion limit: ``invoke_graph`` sets it to ``Context.max_steps`` plus
``WRAP_UP_STEPS``, and the routers escalate once only the wrap-up steps remain (``remaining_steps``).

    START -> detect -> diagnose -> plan_mitigation -> begin -> snapshot -> [approve] -> execute
          -> validate -> report (resolved) | diagnose (better, still open: the next fault of a compound
             incident) | undo (TNR broken or
             ineffective) ; undo -> diagnose | escalate (also at once when the restore does not match
             the undo log) ; escalate/report -> END

The human approval (``approve``) comes after ``snapshot``: only plans the guard and the server dry run
accepted reach it, with those verdicts and the undo log in the interrupt. A refused, rejected or stale
transaction goes back to ``diagnose``; an edited plan starts again at ``begin``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from stratus.agents.common import budget_spent, context_of
from stratus.agents.detection import detect
from stratus.agents.diagnosis import diagnose
from stratus.agents.mitigation import approve, begin, execute, needs_approval, plan_mitigation, snapshot, validate
from stratus.agents.report import escalate, report
from stratus.agents.undo import undo
from stratus.context import Context
from stratus.state import IncidentInput, IncidentOutput, IncidentState

WRAP_UP_STEPS = 10
"""Steps held back beyond ``Context.max_steps`` so an incident over budget can still finish the
transaction it is in and escalate with a report (at most six more nodes)."""


def _over_budget(state: IncidentState) -> bool:
    return state["remaining_steps"] <= WRAP_UP_STEPS


def after_detect(state: IncidentState) -> Literal["diagnose", "report"]:
    return "diagnose" if state.get("detected") else "report"


def after_plan(state: IncidentState) -> Literal["begin", "escalate"]:
    if not state.get("plan") or _over_budget(state):
        return "escalate"
    return "begin"


def after_snapshot(state: IncidentState, runtime: Runtime[Context]) -> Literal["execute", "approve", "diagnose"]:
    """A refused transaction never reaches a human; an accepted one waits for approval if required."""
    if state["transactions"][-1]["status"] == "refused":
        return "diagnose"
    return "approve" if needs_approval(context_of(runtime), state) else "execute"


def after_approve(state: IncidentState) -> Literal["execute", "begin", "diagnose"]:
    if state["transactions"][-1]["status"] == "snapshotted":
        return "execute"
    return "begin" if state.get("plan") else "diagnose"  # an edited plan is judged again from the start


def after_validate(state: IncidentState, runtime: Runtime[Context]) -> Literal["report", "diagnose", "undo",
                                                                              "escalate"]:
    ctx = context_of(runtime)
    tx = state["transactions"][-1]
    still_open = bool((state.get("health_latest") or {}).get("unhealthy"))
    if tx["status"] != "committed":
        return "undo"
    if not still_open and not state.get("leftovers"):
        return "report"
    if budget_spent(state, ctx) or _over_budget(state):
        return "escalate"
    return "diagnose"


def after_undo(state: IncidentState, runtime: Runtime[Context]) -> Literal["diagnose", "escalate", "report"]:
    ctx = context_of(runtime)
    if state["transactions"][-1].get("restore_mismatch"):
        return "escalate"  # the namespace is no longer in a state the undo log describes
    if not (state.get("health_latest") or {}).get("unhealthy") and not state.get("leftovers"):
        return "report"  # the incident closed on its own (an earlier fix finished taking effect)
    if budget_spent(state, ctx) or _over_budget(state):
        return "escalate"
    return "diagnose"


def recursion_limit(ctx: Context, steps_used: int = 0) -> int:
    """The recursion limit that gives an incident ``ctx.max_steps`` node runs before it escalates.

    ``steps_used`` is the number of nodes the thread already ran, when a run resumes it (LangGraph
    counts the limit per run, the budget is per incident).
    """
    return ctx.max_steps + WRAP_UP_STEPS - steps_used


def wire(validate_node: Callable[..., Any] = validate,
         route_validate: Callable[..., Any] = after_validate) -> StateGraph[Any, Any, Any, Any]:
    """The graph's nodes and edges, not yet compiled.

    The benchmark's baselines (``stratus.bench.baselines``) pass their own ``validate`` node and its
    router; every other node and edge is this graph's.
    """
    g = StateGraph(IncidentState, input_schema=IncidentInput, output_schema=IncidentOutput,
                   context_schema=Context)
    g.add_node("detect", detect)
    g.add_node("diagnose", diagnose)
    g.add_node("plan_mitigation", plan_mitigation)
    g.add_node("approve", approve)
    g.add_node("begin", begin)
    g.add_node("snapshot", snapshot)
    g.add_node("execute", execute)
    g.add_node("validate", validate_node)
    g.add_node("undo", undo)
    g.add_node("escalate", escalate)
    g.add_node("report", report)

    g.add_edge(START, "detect")
    g.add_conditional_edges("detect", after_detect)
    g.add_edge("diagnose", "plan_mitigation")
    g.add_conditional_edges("plan_mitigation", after_plan)
    g.add_edge("begin", "snapshot")
    g.add_conditional_edges("snapshot", after_snapshot)
    g.add_conditional_edges("approve", after_approve)
    g.add_edge("execute", "validate")
    g.add_conditional_edges("validate", route_validate)
    g.add_conditional_edges("undo", after_undo)
    g.add_edge("escalate", END)
    g.add_edge("report", END)
    return g


def compile_graph(g: StateGraph[Any, Any, Any, Any], checkpointer: Any = None) -> Any:
    """Compile with a checkpointer; runs that set no recursion limit (Studio) get the default step budget."""
    return g.compile(checkpointer=checkpointer).with_config(recursion_limit=recursion_limit(Context()))


def build_graph(checkpointer: Any = None) -> Any:
    """Compile the STRATUS graph; pass a checkpointer for durable, resumable incidents."""
    return compile_graph(wire(), checkpointer)


graph = build_graph()
