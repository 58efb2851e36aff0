"""TNR transactions: begin (lock + intent), snapshot (undo log), guard, apply, settle, undo.

Each step is a plain function over the Cluster protocol; the graph runs them in separate nodes so the
checkpointer persists the undo log before any change is made (DESIGN §6).
"""

from __future__ import annotations

import json
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.base import Cluster, Ref
from stratus.cluster.mutate import clean_manifest
from stratus.context import Context
from stratus.state import Transaction
from stratus.tools import kubectl
from stratus.tools.kubectl import render

ROLLOUT_POLL_S = 15.0


def refs_for(actions: list[Action], namespace: str) -> list[Ref]:
    """Objects an action list touches, in order, without duplicates."""
    refs: list[Ref] = []
    for a in actions:
        ref = kubectl.touches(a, namespace)
        if ref is not None and ref not in refs:  # None: exec, whose undo is the inverse command
            refs.append(ref)
    return refs


def begin(cluster: Cluster, tx_id: str, attempt: int, namespace: str, actions: list[Action],
          hypothesis: dict[str, Any] | None, holder: str, ttl_s: float) -> Transaction:
    tx = Transaction(id=tx_id, attempt=attempt, namespace=namespace, hypothesis=hypothesis,
                     actions=[a.model_dump() for a in actions], kubectl=[render(a) for a in actions],
                     started_at=cluster.now())
    if not cluster.acquire_lock(namespace, holder, ttl_s):
        tx.status, tx.verdict = "refused", "refused"
        tx.verdict_reason = f"namespace {namespace} is locked by another STRATUS transaction"
    return tx


def snapshot_and_guard(cluster: Cluster, tx: Transaction, allowed_namespaces: set[str] | None) -> Transaction:
    """Record the undo log (manifests + inverse commands), then run the guard and server dry runs."""
    actions = [Action(**a) for a in tx.actions]
    tx.snapshot = cluster.snapshot(refs_for(actions, tx.namespace))
    inverse: list[dict[str, Any]] = []
    problems: list[str] = []
    for a in actions:
        verdict = kubectl.guard(a, allowed_namespaces=allowed_namespaces,
                                current=kubectl.current_in(a, tx.snapshot, tx.namespace))
        if not verdict.allowed:
            problems.append(f"{render(a)}: refused by the guard: {verdict.reason}")
            continue
        if a.verb == "exec":
            inv = kubectl.inverse(a, None)
            if not inv:
                problems.append(f"{render(a)}: no known inverse")
                continue
            inverse.extend(i.model_dump() for i in inv)
        dry = cluster.apply(a, dry_run=True)
        if not dry.ok:
            problems.append(f"{render(a)}: server dry run failed: {dry.message}")
    tx.inverse = inverse
    if problems:
        tx.status, tx.verdict, tx.verdict_reason = "refused", "refused", "; ".join(problems)
    else:
        tx.status = "snapshotted"
    return tx


def apply_all(cluster: Cluster, tx: Transaction) -> Transaction:
    results = []
    for a in (Action(**x) for x in tx.actions):
        res = cluster.apply(a)
        results.append(res.model_dump())
        if not res.ok:
            break
    tx.results = results
    tx.status = "applied"
    return tx


def _rolling(cluster: Cluster, refs: list[Ref]) -> list[str]:
    busy = []
    for kind, name, ns in refs:
        if kind != "Deployment":
            continue
        try:
            d = cluster.get(kind, name, ns)
        except Exception:
            continue
        st, want = d.get("status", {}), int(d["spec"].get("replicas", 1))
        if st.get("updatedReplicas", 0) < want or st.get("replicas", 0) > want or \
                st.get("availableReplicas", 0) < want:
            busy.append(name)
    return busy


def settle(cluster: Cluster, ctx: Context, refs: list[Ref]) -> float:
    """Wait the settle window, then (bounded) while touched rollouts are still in progress."""
    waited = 0.0
    cluster.wait(ctx.settle_s)
    waited += ctx.settle_s
    while waited < ctx.settle_max_s and _rolling(cluster, refs):
        cluster.wait(ROLLOUT_POLL_S)
        waited += ROLLOUT_POLL_S
    return waited


def undo(cluster: Cluster, tx: Transaction) -> list[str]:
    """Restore the undo log: inverse commands newest first, then manifests in reverse order.

    Returns the objects whose restored spec differs from the snapshot (empty when verified)."""
    for inv in reversed(tx.inverse):
        cluster.apply(Action(**inv))
    cluster.restore(tx.snapshot)
    return verify_restored(cluster, tx)


def _desired(m: dict[str, Any]) -> str:
    m = clean_manifest(m)
    meta = m.get("metadata", {})
    keep = {k: v for k, v in m.items() if k not in ("metadata", "apiVersion")}
    keep["labels"] = meta.get("labels") or {}
    keep["annotations"] = meta.get("annotations") or {}
    return json.dumps(keep, sort_keys=True)


def verify_restored(cluster: Cluster, tx: Transaction) -> list[str]:
    refs = [(m["kind"], m["metadata"]["name"], m["metadata"].get("namespace")) for m in tx.snapshot
            if m["kind"] != "Pod"]
    now = cluster.snapshot(refs)
    mismatched = []
    for want, got in zip([m for m in tx.snapshot if m["kind"] != "Pod"], now):
        if bool(want.get("absent")) != bool(got.get("absent")):
            mismatched.append(f"{want['kind']}/{want['metadata']['name']}")
        elif not want.get("absent") and _desired(want) != _desired(got):
            mismatched.append(f"{want['kind']}/{want['metadata']['name']}")
    return mismatched
