"""TNR transactions: begin (lock + intent), snapshot (undo log), guard, apply, settle, undo.

Each step is a plain function over the Cluster protocol; the graph runs them in separate nodes so the
checkpointer persists the undo log before any change is made (DESIGN §6). The undo log covers manifests
(``Cluster.snapshot``) and database state (``Cluster.read_db``), and a restore is verified against both.
"""

from __future__ import annotations

import json
from typing import Any

from stratus.cluster.actions import Action, ActionResult
from stratus.cluster.base import Cluster, ClusterError, Ref
from stratus.cluster.mutate import clean_manifest
from stratus.context import Context
from stratus.state import Transaction
from stratus.tools import kubectl
from stratus.tools.journal import with_secret_data
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


def objects_of(actions: list[Action], namespace: str) -> set[Ref]:
    """Everything an action list can change: touched objects, and the workloads an exec administers."""
    out = set(refs_for(actions, namespace))
    out |= {(a.kind, a.name, a.namespace or namespace) for a in actions if a.verb == "exec"}
    return out


def _capture(cluster: Cluster, captured: list[dict[str, Any]], a: Action) -> dict[str, Any]:
    """The database state ``a`` can change, read once per transaction before anything is applied."""
    read = kubectl.db_state_read(a)
    for entry in captured:
        if entry["read"] == read.model_dump():
            return entry["state"]
    state = cluster.read_db(read)
    captured.append({"read": read.model_dump(), "kubectl": render(read), "state": state})
    return state


def snapshot_and_guard(cluster: Cluster, tx: Transaction, allowed_namespaces: set[str] | None) -> Transaction:
    """Record the undo log, then judge every action by the guard and a server dry run.

    The undo log holds the manifest of every touched object and, for database commands, the state they
    can change (read with the catalogued read-only command) with the inverse derived from it. Each
    action's guard and dry-run verdicts are kept in ``tx.checks`` (what a human approving it sees)."""
    actions = [Action(**a) for a in tx.actions]
    tx.snapshot = cluster.snapshot(refs_for(actions, tx.namespace))
    inverse: list[dict[str, Any]] = []
    captured: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    problems: list[str] = []
    deleted: set[Ref | None] = set()
    for a in actions:
        verdict = kubectl.guard(a, allowed_namespaces=allowed_namespaces,
                                current=kubectl.current_in(a, tx.snapshot, tx.namespace))
        check: dict[str, Any] = {"kubectl": render(a), "guard_ok": verdict.allowed,
                                 "guard": verdict.reason or "allowed"}
        checks.append(check)
        if not verdict.allowed:
            problems.append(f"{render(a)}: refused by the guard: {verdict.reason}")
            continue
        ref = kubectl.touches(a, tx.namespace)
        if a.verb == "create" and ref in deleted:  # a re-create: the server would judge it against the old object
            check.update(dry_run="not run: an earlier action of this plan deletes the object", dry_run_ok=True)
            continue
        if a.verb == "delete":
            deleted.add(ref)
        dry = cluster.apply(a, dry_run=True)
        check.update(dry_run=dry.message, dry_run_ok=dry.ok)
        if not dry.ok:
            problems.append(f"{render(a)}: server dry run failed: {dry.message}")
            continue
        if a.verb == "exec":
            try:
                before = _capture(cluster, captured, a)
            except ClusterError as exc:
                problems.append(f"{render(a)}: cannot read the database state before the change: {exc}")
                continue
            inv = kubectl.inverse(a, before)
            if inv is None:
                problems.append(f"{render(a)}: no known inverse from the state read before it: {before}")
                continue
            inverse.extend(i.model_dump() for i in inv)
    tx.inverse, tx.db_snapshot, tx.checks = inverse, captured, checks
    if problems:
        tx.status, tx.verdict, tx.verdict_reason = "refused", "refused", "; ".join(problems)
    else:
        tx.status = "snapshotted"
    return tx


def apply_all(cluster: Cluster, tx: Transaction) -> Transaction:
    results = []
    for a in (Action(**x) for x in tx.actions):
        try:  # a Secret restore gets its contents only here, and its result records the masked action
            full = with_secret_data(a)
            res = cluster.apply(full)
            if full is not a:
                res = res.model_copy(update={"action": a.model_dump()})
        except ClusterError as exc:
            res = ActionResult(ok=False, action=a.model_dump(), message=str(exc))
        results.append(res.model_dump())
        if not res.ok:
            break
    tx.results = results
    tx.status = "applied"
    return tx


STUCK = frozenset({"CreateContainerConfigError", "CreateContainerError", "InvalidImageName", "ErrImagePull",
                   "ImagePullBackOff", "CrashLoopBackOff", "RunContainerError"})
"""Waiting reasons a pod does not leave by itself: a rollout whose new pods show them will not finish."""


def _stuck(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    if any(c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
           for c in st.get("conditions") or []):
        return True
    return any(((cs.get("state") or {}).get("waiting") or {}).get("reason") in STUCK
               for cs in st.get("containerStatuses") or [])


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _stalled(cluster: Cluster, d: dict[str, Any], ns: str) -> bool:
    """Whether every pod of the Deployment that is not Ready is stuck (see ``STUCK``), so waiting longer
    for its rollout only delays the verdict (Kubernetes' own progress deadline is ten minutes)."""
    labels = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return False
    try:
        pods = cluster.list("Pod", ns, selector=labels)
    except ClusterError:
        return False
    waiting = [p for p in pods if not _ready(p)]
    return bool(waiting) and all(_stuck(p) for p in waiting)


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
        if (st.get("updatedReplicas", 0) < want or st.get("replicas", 0) > want or
                st.get("availableReplicas", 0) < want) and not _stalled(cluster, d, ns or ""):
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


def undo(cluster: Cluster, tx: Transaction) -> list[dict[str, Any]]:
    """Restore the undo log: inverse commands newest first, then manifests in reverse order.

    An inverse command runs only while the database state it restores differs from the state captured
    before the change, so a command that failed or never ran is not "undone" (which would be a change of
    its own). Returns what still differs from the undo log (empty when the restore is verified)."""
    for inv in reversed(tx.inverse):
        action = Action(**inv)
        entry = _captured_entry(tx, action)
        try:
            if entry is not None and _same_db_state(cluster.read_db(Action(**entry["read"])), entry["state"]):
                continue
        except ClusterError:
            pass  # unreadable now: run the inverse, and let the verification judge the result
        cluster.apply(action)
    cluster.restore(tx.snapshot)
    return diff_from_undo_log(cluster, tx)


def _captured_entry(tx: Transaction, inverse_action: Action) -> dict[str, Any] | None:
    read = kubectl.db_state_read(inverse_action).model_dump()
    return next((e for e in tx.db_snapshot if e["read"] == read), None)


def _db_key(state: dict[str, Any]) -> str:
    roles = sorted(json.dumps(r, sort_keys=True) for r in state.get("roles") or [])
    return json.dumps({**state, "roles": roles}, sort_keys=True)


def _same_db_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _db_key(a) == _db_key(b)


def _desired(m: dict[str, Any]) -> dict[str, Any]:
    m = clean_manifest(m)
    meta = m.get("metadata", {})
    keep = {k: v for k, v in m.items() if k not in ("metadata", "apiVersion")}
    keep["labels"] = meta.get("labels") or {}
    keep["annotations"] = meta.get("annotations") or {}
    return keep


def diff_from_undo_log(cluster: Cluster, tx: Transaction) -> list[dict[str, Any]]:
    """What differs now from the undo log, each as ``{"object", "captured", "observed"}``.

    Manifests are compared on their desired state (spec, labels, annotations), database state on what
    the catalogued read returns. Used to verify a restore, and to check before an approved change runs
    that the world is still the one the undo log recorded."""
    kept = [m for m in tx.snapshot if m["kind"] != "Pod"]
    now = cluster.snapshot([(m["kind"], m["metadata"]["name"], m["metadata"].get("namespace")) for m in kept])
    out: list[dict[str, Any]] = []
    for want, got in zip(kept, now):
        name = f"{want['kind']}/{want['metadata']['name']}"
        if bool(want.get("absent")) != bool(got.get("absent")):
            out.append({"object": name, "captured": "absent" if want.get("absent") else "present",
                        "observed": "absent" if got.get("absent") else "present"})
        elif not want.get("absent"):
            w, g = _desired(want), _desired(got)
            keys = sorted(k for k in set(w) | set(g) if json.dumps(w.get(k), sort_keys=True)
                          != json.dumps(g.get(k), sort_keys=True))
            if keys:
                out.append({"object": name, "captured": {k: w.get(k) for k in keys},
                            "observed": {k: g.get(k) for k in keys}})
    for entry in tx.db_snapshot:
        try:
            observed: Any = cluster.read_db(Action(**entry["read"]))
        except ClusterError as exc:
            observed = f"unreadable: {exc}"
        if not isinstance(observed, dict) or not _same_db_state(observed, entry["state"]):
            out.append({"object": entry["kubectl"], "captured": entry["state"], "observed": observed})
    return out
