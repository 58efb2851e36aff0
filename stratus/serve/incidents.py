"""What ``GET /api/v1/incidents/{id}`` returns: the intake record joined with the incident's checkpoints.

The intake store knows the alerts, the claims and the outcome; the checkpointed graph thread (the same
one ``stratus log`` reads) knows the phase, the graph's steps and the transaction log with each TNR
verdict. Transactions are summarised (undo logs hold whole manifests); ``stratus log ID --json`` prints
them in full.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stratus.api import open_checkpointer
from stratus.graph import build_graph
from stratus.serve.store import IntakeStore

MAX_STEPS = 200  # graph steps shown in a timeline; an incident is bounded by Context.max_steps anyway


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z") if t is not None else None


def _h(report: dict[str, Any] | None) -> float | None:
    return None if not report else report.get("H")


def transaction_view(tx: dict[str, Any]) -> dict[str, Any]:
    """A transaction as the API shows it: what it did, the TNR verdict and why, H before and after."""
    return {"id": tx["id"], "attempt": tx.get("attempt"), "status": tx.get("status"), "verdict": tx.get("verdict"),
            "verdict_reason": tx.get("verdict_reason", ""), "kubectl": tx.get("kubectl") or [],
            "started_at": _iso(tx.get("started_at")), "ended_at": _iso(tx.get("ended_at")),
            "hypothesis": (tx.get("hypothesis") or {}).get("summary") or (tx.get("hypothesis") or {}).get("component"),
            "H_before": _h(tx.get("health_before")), "H_after": _h(tx.get("health_after")),
            "H_restored": _h(tx.get("health_restored")), "restore_ok": tx.get("restore_ok"),
            "results": [{"ok": r.get("ok"), "message": r.get("message", "")} for r in tx.get("results") or []]}


def graph_view(db: str, incident_id: str) -> dict[str, Any] | None:
    """The incident's checkpointed state and its steps, or None before its graph first ran."""
    config: Any = {"configurable": {"thread_id": incident_id}}
    with open_checkpointer(db) as saver:
        graph = build_graph(checkpointer=saver)
        snap = graph.get_state(config)
        if not snap.values:
            return None
        steps = [{"at": s.created_at.replace("+00:00", "Z"), "source": "graph", "kind": "step", "next": list(s.next)}
                 for s in graph.get_state_history(config, limit=MAX_STEPS) if s.next]
    values = snap.values
    return {"phase": values.get("phase"), "next": list(snap.next), "detected": values.get("detected"),
            "report": values.get("report"), "escalation_reason": values.get("escalation_reason"),
            "hypotheses": (values.get("hypotheses") or [])[:5],
            "transactions": [transaction_view(t) for t in values.get("transactions") or []],
            "health_history": values.get("health_history") or [],
            "llm_tokens": values.get("llm_tokens", 0), "steps": list(reversed(steps))}


def row_view(row: dict[str, Any]) -> dict[str, Any]:
    """An incident row with its times as RFC 3339 UTC strings."""
    return {**row, **{k: _iso(row[k]) for k in ("created_at", "updated_at", "finished_at", "lease_until")}}


def incident_view(store: IntakeStore, incident_id: str) -> dict[str, Any] | None:
    """Status, alerts, timeline (intake events and graph steps, oldest first) and transactions."""
    row = store.incident(incident_id)
    if row is None:
        return None
    graph = graph_view(store.db, incident_id)
    timeline = [{"at": _iso(e.pop("at")), "source": "intake", **e} for e in row.pop("events")]
    if graph is not None:
        timeline += graph.pop("steps")
    timeline.sort(key=lambda e: e["at"] or "")
    row = row_view(row)
    for a in row["alerts"]:
        a["updated_at"] = _iso(a["updated_at"])
    return {**row, "timeline": timeline, "graph": graph,
            "transactions": graph["transactions"] if graph else [],
            "approve_with": f"POST /api/v1/incidents/{incident_id}/approval" if row["state"] == "waiting" else None}
