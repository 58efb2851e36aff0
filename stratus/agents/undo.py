"""Undo agent: restores a transaction's undo log, verifies the restore, and writes the reflection.

The reflection (what was tried, what happened, what not to repeat) replaces transcripts as the memory
the next attempt starts from. A restore that does not match the undo log escalates at once, with the
captured and the observed state of each object that differs, and nothing more is applied to the
namespace in this incident (``blocked_by_restore``).
"""

from __future__ import annotations

import json
from typing import Any

from langgraph.runtime import Runtime

from stratus.agents.closing import open_leftovers
from stratus.agents.common import cluster_of, context_of
from stratus.cluster.actions import Action
from stratus.context import Context
from stratus.state import HealthReport, IncidentState, Transaction
from stratus.tools import transaction as txn
from stratus.tools.analyzers import assess
from stratus.tools.health import unhealthy_components


def blocked_by_restore(state: IncidentState) -> str | None:
    """Why nothing more may be applied to the incident's namespace: an earlier restore that did not
    match its undo log (None when every restore was verified)."""
    for t in state.get("transactions") or []:
        if t.get("restore_mismatch") and t.get("namespace") == state["namespace"]:
            diffs = "; ".join(f"{d['object']}: captured {json.dumps(d['captured'], sort_keys=True)}, "
                              f"observed {json.dumps(d['observed'], sort_keys=True)}"
                              for d in t["restore_mismatch"])
            return (f"the restore of {t['id']} does not match its undo log, so nothing more is applied to "
                    f"namespace {t['namespace']} in this incident: {diffs}")
    return None


def undo(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    tx = Transaction(**state["transactions"][-1])
    ns = state["namespace"]
    tx.restore_mismatch = txn.undo(cluster, tx)
    actions = [Action(**a) for a in tx.actions]
    txn.settle(cluster, ctx, txn.refs_for(actions, ns))
    restored = assess(cluster, ctx, ns)
    before = HealthReport(**tx.health_before) if tx.health_before else restored
    tx.health_restored = restored.model_dump()
    # alerts of the original fault may start firing late (their `for` delay): only symptoms count here
    symptoms = [u for u in restored.unhealthy if not u.startswith("alert:")]
    worse = sorted(unhealthy_components(symptoms) - unhealthy_components(before.unhealthy))
    mismatched = [d["object"] for d in tx.restore_mismatch]
    tx.restore_ok = not mismatched and restored.H >= before.H - tx.eps and not worse
    tx.status, tx.ended_at = "undone", cluster.now()
    if tx.verdict is None:
        tx.verdict = "crashed"
    cluster.release_lock(ns, state["incident_id"])
    hyp = tx.hypothesis or {}
    after = tx.health_after or {}
    where = ", ".join(f"{k}/{n}" for k, n, _ns in sorted(txn.objects_of(actions, ns)))
    reflection = (
        f"Attempt {tx.attempt}: hypothesis {hyp.get('fault_class')} at {hyp.get('component')} "
        f"(confidence {hyp.get('confidence')}); ran {' && '.join(tx.kubectl)}; verdict {tx.verdict}: "
        f"{tx.verdict_reason}. H before {before.H:.4f}, after {after.get('H', float('nan')):.4f}, "
        f"restored {restored.H:.4f} ({'verified' if tx.restore_ok else 'NOT verified: ' + ', '.join(mismatched + worse)}). "
        + ("The crash interrupted it before any verdict: it may be retried." if tx.verdict == "crashed"
           else f"Do not repeat this plan (one more try only if a later committed change touches {where}).")
    )
    out: dict[str, Any] = {"phase": "undo", "transactions": [tx.model_dump()], "reflections": [reflection],
                           "health_latest": restored.model_dump(),
                           "health_history": [{"t": restored.at, "H": restored.H, "phase": "undo", "tx": tx.id,
                                               "verdict": tx.verdict}]}
    out["leftovers"] = [] if restored.unhealthy else open_leftovers(ctx, cluster, state)
    if tx.restore_mismatch:
        out["escalation_reason"] = blocked_by_restore({**state, "transactions": [tx.model_dump()]})
    return out
