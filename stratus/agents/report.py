"""The incident report: outcome, root cause, transactions, and the incident-level TNR check."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from stratus.agents.closing import account as leftover_account
from stratus.agents.closing import release_baseline
from stratus.agents.common import budget_spent, cluster_of, context_of
from stratus.context import Context
from stratus.policies.rules import runbook_data
from stratus.state import IncidentReport, IncidentState
from stratus.tools.analyzers import assess
from stratus.tools.health import unhealthy_components

ACCOUNT_HYPOTHESES = 3
"""Leading hypotheses an escalation's summary names, with their evidence."""
ACCOUNT_EVIDENCE_CHARS = 300
"""Evidence kept per hypothesis in that summary (the full list is in the state and the checkpoint)."""


def _limit_hit(state: IncidentState, ctx: Context) -> str:
    """Why the graph escalated when no node gave a reason: the router hit a transaction or the step limit."""
    return budget_spent(state, ctx) or f"step limit reached (Context.max_steps={ctx.max_steps} graph steps)"


def _account(state: IncidentState, final: Any) -> str:
    """What an escalation hands over: the symptoms still open, the leading explanations with their
    evidence, and what was committed, so a human starts from the findings, not from scratch."""
    parts = []
    open_now = sorted(unhealthy_components(final.unhealthy)) if final else []
    if open_now:
        parts.append(f"Still unhealthy: {', '.join(open_now)}.")
    for h in (state.get("hypotheses") or [])[:ACCOUNT_HYPOTHESES]:
        ev = "; ".join(h.get("evidence") or [])[:ACCOUNT_EVIDENCE_CHARS]
        parts.append(f"Found: {h['fault_class']} at {h['component']}"
                     + (f" ({h['summary']})" if h.get("summary") else "") + (f"; evidence: {ev}" if ev else "") + ".")
    kept = [k for t in state.get("transactions") or [] if t["status"] == "committed" for k in t["kubectl"]]
    if kept:  # a manifest applied inline is named by its command line, not quoted whole
        kept = [k.split("\n", 1)[0] for k in kept]
        parts.append(f"Committed and kept: {' && '.join(kept)}.")
    return (" " + " ".join(parts)) if parts else ""


def _report(state: IncidentState, runtime: Runtime[Context], escalated: bool) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    release_baseline(ctx, state)
    txs = state.get("transactions") or []
    detect = state.get("health_detect") or {}
    eps = float(state.get("eps", ctx.eps_floor))
    final = assess(cluster, ctx, state["namespace"]) if state.get("detected") else None
    h0 = detect.get("H")
    h1 = final.H if final else h0
    violation = bool(final and h0 is not None and h1 is not None and h1 < h0 - eps)
    committed = [t for t in txs if t["status"] == "committed"]
    def gain(t: dict[str, Any]) -> float:
        return (t.get("health_after") or {}).get("H", 0.0) - (t.get("health_before") or {}).get("H", 0.0)

    # the root cause is what the first committed fix of a cause (not a symptom) addressed; failing
    # that, what the most effective committed fix addressed
    classes = runbook_data()["classes"]
    causes = [t for t in committed
              if not classes.get((t.get("hypothesis") or {}).get("fault_class", ""), {}).get("symptom")]
    root = (causes[0] if causes else max(committed, key=gain)).get("hypothesis") if committed else None
    if root is None and state.get("hypotheses"):
        root = state["hypotheses"][0]
    if not state.get("detected"):
        outcome, summary = "no_incident", "No open incident: alerts and health show nothing to fix."
    elif escalated:
        outcome = "escalated"
        summary = (f"Escalated to a human: {state.get('escalation_reason') or _limit_hit(state, ctx)}. "
                   f"{len(txs)} transaction(s), {sum(t['status'] == 'undone' for t in txs)} undone."
                   + _account(state, final) + leftover_account(state))
    else:
        outcome = "resolved"
        fix = next((t for t in committed if t.get("hypothesis") == root), committed[-1] if committed else None)
        summary = (f"Resolved: {root.get('fault_class')} at {root.get('component')}; "
                   f"fixed by {' && '.join(fix['kubectl'])}." if fix and root else "Resolved.")
        others = [k for t in committed if t is not fix for k in t["kubectl"]]
        if others:
            summary += f" Also committed: {' && '.join(others)}."
    if violation:
        summary += f" TNR VIOLATION: final H {h1:.4f} is below detection H {h0:.4f} - eps {eps:.4f}."
    report = IncidentReport(
        outcome=outcome, summary=summary, root_cause=root, transactions=len(txs),
        rollbacks=sum(t["status"] == "undone" for t in txs), health_initial=h0, health_final=h1,
        tnr_violation=violation, reasons=list(state.get("reflections") or []))
    out: dict[str, Any] = {"phase": "escalated" if escalated else ("resolved" if state.get("detected")
                                                                   else "no_incident"),
                           "report": report.model_dump()}
    if final:
        out["health_latest"] = final.model_dump()
    return out


def report(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    return _report(state, runtime, escalated=False)


def escalate(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    return _report(state, runtime, escalated=True)
