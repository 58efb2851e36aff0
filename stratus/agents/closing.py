"""Closing an incident: no "resolved" while a change from around it still takes something away.

The graph reaches a clean namespace after a commit (or after an undo, when an earlier fix finished taking
effect). Before it reports, ``open_leftovers`` asks the change journal for leftovers
(``stratus.tools.analyzers.leftovers``): faults with no symptom right now. While some remain and a plan
for them is untried, Diagnosis turns them into hypotheses and Mitigation reverts them, each as a TNR
transaction; the ones it cannot revert are escalated by name instead of being reported resolved.

While an incident is open the journal holds its healthy baseline (``ChangeJournal.hold``), so the
state after STRATUS's partial repairs never becomes the version a revert goes back to.
"""

from __future__ import annotations

from typing import Any

from stratus.context import Context
from stratus.state import Hypothesis, IncidentState
from stratus.tools.analyzers.leftovers import as_hypotheses, leftovers
from stratus.tools.analyzers.view import View


def hold_baseline(ctx: Context, cluster: Any, state: IncidentState) -> None:
    if ctx.journal is not None:
        ctx.journal.hold(state["incident_id"], cluster.now())


def release_baseline(ctx: Context, state: IncidentState) -> None:
    if ctx.journal is not None:
        ctx.journal.release(state["incident_id"])


def open_leftovers(ctx: Context, cluster: Any, state: IncidentState) -> list[dict[str, Any]]:
    """Leftovers in the incident's namespace (none without a journal). Call it only once U is empty."""
    if ctx.journal is None:
        return []
    # STRATUS's own last change must be on record before it is asked what is left; the callers have just
    # measured the namespace clean, so the journal is told so rather than assessing it again
    ctx.journal.observe(cluster, ctx, healthy=True)
    detected_at = float((state.get("health_detect") or {}).get("at") or cluster.now())
    return leftovers(View.read(cluster, state["namespace"], ctx.journal), detected_at)


def leftover_hypotheses(state: IncidentState) -> list[Hypothesis] | None:
    """The hypotheses for the leftovers on record when the namespace is clean (None: diagnose as usual)."""
    found = state.get("leftovers") or []
    if not found or (state.get("health_latest") or {}).get("unhealthy"):
        return None
    return as_hypotheses(found)


def account(state: IncidentState) -> str:
    """The leftovers an escalation names, or ""."""
    found = state.get("leftovers") or []
    if not found:
        return ""
    return " Left in place: " + "; ".join(f"{f['why']} (serves {f['component']})" for f in found) + "."
