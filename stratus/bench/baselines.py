"""The benchmark's baselines: STRATUS's own agents without the TNR gate, as graphs of their own.

- ``retry``: the STRATUS loop, but every change is committed as it stands (the TNR verdict is recorded,
  not enforced, and a settling change is not watched); still-open incidents go round again.
- ``oneshot``: the same nodes, one transaction (the runner sets ``max_attempts`` to 1), then report.

    START -> detect -> diagnose -> plan_mitigation -> begin -> snapshot -> [approve] -> execute
          -> validate (ungated) -> report | diagnose (retry, still open) | undo (crashed) ; ...

Both are the production wiring (``stratus.graph.wire``) with their own ``validate`` node and router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from langgraph.runtime import Runtime

from stratus.agents.mitigation import judge
from stratus.context import Context
from stratus.graph import after_validate, build_graph, compile_graph, wire
from stratus.state import IncidentState


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


GRAPHS: dict[str, Callable[..., Any]] = {"stratus": build_graph, "oneshot": build_oneshot, "retry": build_retry}
"""Graph builder of each agent the benchmark compares (the contract names of DESIGN §9)."""
