"""Undo agent: restores a transaction's undo log, verifies the restore, and writes the reflection.

The reflection (what was tried, what happened, what not to repeat) replaces transcripts as the memory
the next attempt starts from.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from stratus.agents.common import cluster_of, context_of
from stratus.cluster.actions import Action
from stratus.context import Context
from stratus.state import HealthReport, IncidentState, Transaction
from stratus.tools import transaction as txn
from stratus.tools.analyzers import assess
from stratus.tools.health import unhealthy_components


def undo(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    tx = Transaction(**state["transactions"][-1])
    ns = state["namespace"]
    mismatched = txn.undo(cluster, tx)
    refs = txn.refs_for([Action(**a) for a in tx.actions], ns)
    txn.settle(cluster, ctx, refs)
    restored = assess(cluster, ctx, ns)
    before = HealthReport(**tx.health_before) if tx.health_before else restored
    tx.health_restored = restored.model_dump()
    # alerts of the original fault may start firing late (their `for` delay): only symptoms count here
    symptoms = [u for u in restored.unhealthy if not u.startswith("alert:")]
    worse = sorted(unhealthy_components(symptoms) - unhealthy_components(before.unhealthy))
    tx.restore_ok = not mismatched and restored.H >= before.H - tx.eps and not worse
    tx.status, tx.ended_at = "undone", cluster.now()
    if tx.verdict is None:
        tx.verdict = "crashed"
    cluster.release_lock(ns, state["incident_id"])
    hyp = tx.hypothesis or {}
    after = tx.health_after or {}
    reflection = (
        f"Attempt {tx.attempt}: hypothesis {hyp.get('fault_class')} at {hyp.get('component')} "
        f"(confidence {hyp.get('confidence')}); ran {' && '.join(tx.kubectl)}; verdict {tx.verdict}: "
        f"{tx.verdict_reason}. H before {before.H:.4f}, after {after.get('H', float('nan')):.4f}, "
        f"restored {restored.H:.4f} ({'verified' if tx.restore_ok else 'NOT verified: ' + ', '.join(mismatched + worse)}). "
        + ("The crash interrupted it before any verdict: it may be retried." if tx.verdict == "crashed"
           else "Do not repeat this plan.")
    )
    point = {"t": restored.at, "H": restored.H, "phase": "undo", "tx": tx.id, "verdict": tx.verdict}
    return {"phase": "undo", "transactions": [tx.model_dump()], "reflections": [reflection],
            "health_latest": restored.model_dump(), "health_history": [point]}
