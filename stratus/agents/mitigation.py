"""Mitigation agent: the only writer. Plans a fix, then runs it as a TNR transaction.

Nodes: ``plan_mitigation`` (pick the best untried plan), ``begin`` (lock + intent), ``snapshot`` (undo
log + guard + dry run), ``approve`` (human gate, optional: only for plans the guard and the dry run
accepted, showing their verdicts), ``execute`` (apply + settle) and ``validate`` (measure and decide
commit or undo). Each node is checkpointed, so the undo log is durable before any change is applied.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from stratus.agents.closing import open_leftovers
from stratus.agents.common import budget_spent, cluster_of, context_of, policy_of
from stratus.agents.undo import blocked_by_restore
from stratus.cluster.actions import Action
from stratus.context import Context
from stratus.policies.base import PolicyStop
from stratus.state import HealthReport, Hypothesis, IncidentState, Transaction, TriedPlans
from stratus.tools import transaction as txn
from stratus.tools.analyzers import assess
from stratus.tools.attribution import scope_of
from stratus.tools.health import (
    Scope,
    component_of_pod,
    symptoms,
    tnr_verdict,
    unhealthy_components,
    with_current_h,
    worsened,
)
from stratus.tools.kubectl import RISKY_VERBS, GuardError, db_state_read, inverse, parse, render, touches


def plan_mitigation(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    worn = worn_out(state)
    hyps = [h for h in (Hypothesis(**h) for h in state.get("hypotheses") or [])
            if (h.fault_class, h.component) not in worn]
    tried = tried_plans(state)
    blocked = blocked_by_restore(state)
    if blocked:
        return {"phase": "plan", "plan": [], "escalation_reason": blocked}
    spent = budget_spent(state, ctx)
    if spent:
        return {"phase": "plan", "plan": [], "escalation_reason": spent}
    policy = policy_of(ctx, state)
    try:
        choice = policy.next_plan(cluster, state["namespace"], hyps, tried,
                                  reflections=list(state.get("reflections") or []))
    except PolicyStop as exc:
        return {"phase": "plan", "plan": [], "escalation_reason": str(exc), **policy.usage()}
    if choice is None:
        reason = "no untried plan for any hypothesis" if hyps else \
            (state.get("escalation_reason") or "no hypothesis explains the symptoms")
        return {"phase": "plan", "plan": [], **policy.usage(), "escalation_reason": reason}
    return {"phase": "plan", "current_hypothesis": choice.as_current_hypothesis(), "proposed": [choice.model_dump()],
            "plan": [a.model_dump() for a in choice.actions], **policy.usage()}


MAX_FAILS_PER_HYPOTHESIS = 2
"""Failed transactions after which a hypothesis (fault class at a component) gets no further plan until
a change commits: its plans differ (a patch, then an undo to each older revision) but share the
diagnosis the failures speak against, and a compound incident's other faults wait meanwhile."""


def worn_out(state: IncidentState) -> set[tuple[str, str]]:
    """Hypotheses with ``MAX_FAILS_PER_HYPOTHESIS`` failed transactions since the last commit."""
    fails: dict[tuple[str, str], int] = {}
    for t in state.get("transactions") or []:
        if t.get("status") == "committed":
            fails.clear()  # the world changed: earlier verdicts may not hold any more
        elif t.get("status") in ("undone", "refused"):
            hyp = t.get("hypothesis") or {}
            key = (hyp.get("fault_class", ""), hyp.get("component", ""))
            fails[key] = fails.get(key, 0) + 1
    return {k for k, n in fails.items() if n >= MAX_FAILS_PER_HYPOTHESIS}


def approval_mode(ctx: Context, state: IncidentState | None = None) -> str:
    """``auto`` resolves to ``risky`` on a real cluster for a policy whose plans need review (the llm
    policy), ``never`` otherwise."""
    if ctx.approval != "auto":
        return ctx.approval
    if getattr(ctx.cluster, "is_twin", False):
        return "never"
    return "risky" if policy_of(ctx, state).plans_need_review else "never"


def _plan_key(t: dict[str, Any]) -> str:
    return (t.get("hypothesis") or {}).get("plan_key", "")


def _objects(t: dict[str, Any]) -> set[Any]:
    return txn.objects_of([Action(**a) for a in t.get("actions") or []], t.get("namespace", ""))


def _unblocks(later: dict[str, Any], t: dict[str, Any]) -> bool:
    """Whether a committed ``later`` change may have been what kept ``t`` from showing its effect.

    ``later`` cleared some components' own symptoms (a pod Ready again, a service no longer erring; an
    alert clock reset is no such clearing), so another fault that masked ``t``'s effect may be gone:
    ``t`` was judged ineffective (nothing worse, nothing better); or it was a regression in which no
    component newly became unhealthy and everything that got worse had its own problem at ``t``'s BEGIN,
    one of them among those ``later`` cleared (``t`` exposed that fault, as a right fix does when the
    traffic it restores reaches a second broken service); or a regression whose newly unhealthy
    components are all healthy after ``later`` (pods it let in, stuck Pending on a node the other fault
    tainted)."""
    before = symptoms((later.get("health_before") or {}).get("unhealthy") or [])
    after = symptoms((later.get("health_after") or {}).get("unhealthy") or [])
    cleared = unhealthy_components(list(before)) - unhealthy_components(list(after))
    if t.get("verdict") == "ineffective":
        return bool(cleared)
    if t.get("verdict") != "regression" or not t.get("health_before") or not t.get("health_after"):
        return False
    was, now = HealthReport(**t["health_before"]), HealthReport(**t["health_after"])
    new = unhealthy_components(now.unhealthy) - unhealthy_components(was.unhealthy)
    if new:
        still = unhealthy_components((later.get("health_after") or {}).get("unhealthy") or [])
        return bool(cleared) and not new & still
    worse = worsened(was, now)
    prior = unhealthy_components(was.unhealthy) | set(was.developing)
    return bool(worse & cleared) and worse <= prior


def tried_plans(state: IncidentState) -> TriedPlans:
    """Plans not to propose again: rejected by a human, refused by the guard, or judged by TNR.

    Committed plans are never repeated, and neither is a plan TNR undid or refused, as its reflection
    says, with one exception: it gets one more try if a change committed after it touched one of the
    objects it touches, because its verdict was given in a world that change altered where the plan
    acts (e.g. a client's fix judged ineffective while its server was broken; the server's fix then
    committed), or if a later commit cleared a component's own symptom and the plan was judged
    ineffective, or a regression that only worsened components with their own problem, one of them
    cleared (in a compound incident another fault can mask a right fix's effect: ``_unblocks``). A commit that
    cleared nothing (say, a restart of an unrelated service that merely reset an alert's clock)
    re-opens nothing. A transaction interrupted by a crash was never judged: its plan
    may run again after recovery (apply and restore set desired state, so a replay is safe).

    Returns each plan's key with its commands, read from the plans on record (``proposed``)."""
    tried = {k for k in state.get("tried") or [] if k}
    txs = state.get("transactions") or []
    for i, t in enumerate(txs):
        key = _plan_key(t)
        if t.get("status") == "committed":
            tried.add(key)
        elif t.get("status") == "crashed" or t.get("verdict") == "crashed":
            continue
        elif sum(_plan_key(u) == key for u in txs) > 1 or \
                not any(u.get("status") == "committed" and (_objects(u) & _objects(t) or _unblocks(u, t))
                        for u in txs[i + 1:]):
            tried.add(key)
    tried.discard("")
    commands = {p["key"]: p["commands"] for p in state.get("proposed") or []}
    return {key: commands.get(key, []) for key in sorted(tried)}


def needs_approval(ctx: Context, state: IncidentState) -> bool:
    """Whether the plan in ``state`` waits for a human (see ``approval_mode``)."""
    mode = approval_mode(ctx, state)
    if mode == "always":
        return True
    if mode == "risky":
        return any(a["verb"] in RISKY_VERBS for a in state["plan"])
    return False


def describe_inverse(tx: Transaction, action: Action) -> list[str]:
    """How TNR would undo this action, from the undo log, in words a human can check."""
    if action.verb == "exec":
        read = db_state_read(action).model_dump()
        before = next((e["state"] for e in tx.db_snapshot if e["read"] == read), None)
    else:
        ref = touches(action, tx.namespace)
        found = [m for m in tx.snapshot if ref is not None and
                 (m["kind"], m["metadata"]["name"]) == ref[:2] and not m.get("absent")]
        before = found[0] if found else None
    inv = inverse(action, before)
    if inv is None:
        return ["no known inverse: the guard will refuse this action"]
    out = []
    for i in inv:
        if i.verb == "apply":
            out.append(f"restore {i.kind}/{i.name} from the snapshot taken before the change")
        else:
            out.append(render(i))
    return out or ["nothing to undo: the change cannot alter the state recorded before it"]


def approve(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask a human about a transaction the guard and the server dry run accepted and whose undo log is
    recorded. Everything before ``interrupt`` is read-only, so a resumed run can repeat it.

    The namespace lock is not held while the human decides. On approval it is taken again and the world
    checked against the undo log: if the lock is taken or the world changed, the transaction is refused
    and Diagnosis plans again. ``H_before`` is measured again, since the change starts now."""
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    tx = Transaction(**state["transactions"][-1])
    items = [{**check, "inverse": describe_inverse(tx, Action(**a))} for check, a in zip(tx.checks, tx.actions)]
    decision = interrupt({"incident": state["incident_id"], "transaction": tx.id,
                          "hypothesis": state.get("current_hypothesis"), "actions": items,
                          "captured": [{"read": e["kubectl"], "state": e["state"]} for e in tx.db_snapshot],
                          "answer": "approve | reject | {'edit': ['kubectl ...']}"})
    hyp = state.get("current_hypothesis") or {}
    out: dict[str, Any] = {"phase": "approve"}
    if decision in ("approve", "approved", True, "yes", "y"):
        stale = [] if cluster.acquire_lock(tx.namespace, state["incident_id"], ctx.lock_ttl_s) else \
            [{"object": "lock", "captured": state["incident_id"], "observed": "held by another transaction"}]
        stale = stale or txn.diff_from_undo_log(cluster, tx)
        if not stale:
            tx.health_before = assess(cluster, ctx, tx.namespace).model_dump()
            return {**out, "transactions": [tx.model_dump()]}
        why = "the world changed while waiting for approval: " + ", ".join(d["object"] for d in stale)
        out.update(plan=[], reflections=[f"Attempt {tx.attempt} approved but not run: {why}"])
    elif isinstance(decision, dict) and decision.get("edit"):
        why = "a human edited the plan"
        try:
            out["plan"] = [parse(c).model_dump() for c in decision["edit"]]
        except GuardError as exc:
            out.update(plan=[], tried=[hyp.get("plan_key", "")],
                       reflections=[f"Edited plan refused by the guard: {exc}"])
    else:
        why = "a human rejected it"
        out.update(plan=[], tried=[hyp.get("plan_key", "")],
                   reflections=[f"A human rejected: {'; '.join(i['kubectl'] for i in items)}"])
    tx.status, tx.verdict, tx.verdict_reason, tx.ended_at = "refused", "refused", why, cluster.now()
    cluster.release_lock(tx.namespace, state["incident_id"])
    return {**out, "transactions": [tx.model_dump()]}


def begin(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    attempt = int(state.get("attempts", 0)) + 1
    actions = [Action(**a) for a in state["plan"]]
    tx = txn.begin(cluster, f"{state['incident_id']}-tx{attempt}", attempt, state["namespace"], actions,
                   state.get("current_hypothesis"), holder=state["incident_id"], ttl_s=ctx.lock_ttl_s)
    blocked = blocked_by_restore(state)
    if blocked and tx.status != "refused":
        cluster.release_lock(tx.namespace, state["incident_id"])
        tx.status, tx.verdict, tx.verdict_reason = "refused", "refused", blocked
    before = assess(cluster, ctx, state["namespace"])
    tx.health_before = before.model_dump()
    tx.eps = float(state.get("eps", ctx.eps_floor))
    return {"phase": "begin", "attempts": attempt, "transactions": [tx.model_dump()]}


def snapshot(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    tx = Transaction(**state["transactions"][-1])
    if tx.status == "refused":
        return {"phase": "snapshot"}
    scope = set(ctx.namespaces) | {state["namespace"]}
    tx = txn.snapshot_and_guard(cluster, tx, scope)
    out: dict[str, Any] = {"phase": "snapshot", "transactions": [tx.model_dump()]}
    if tx.status == "refused":
        cluster.release_lock(tx.namespace, state["incident_id"])
        tx.ended_at = cluster.now()
        out["transactions"] = [tx.model_dump()]
        out["reflections"] = [f"Attempt {tx.attempt} refused before any change: {tx.verdict_reason}"]
    elif needs_approval(ctx, state):
        # a human may take hours: do not hold the namespace meanwhile (``approve`` takes it again and
        # checks the world against the undo log before anything runs)
        cluster.release_lock(tx.namespace, state["incident_id"])
    return out


def execute(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    tx = Transaction(**state["transactions"][-1])
    tx = txn.apply_all(cluster, tx)
    actions = [Action(**a) for a in tx.actions]
    txn.settle(cluster, ctx, txn.refs_for(actions, tx.namespace))
    return {"phase": "execute", "transactions": [tx.model_dump()]}


def _quiet_but_alerting(h: HealthReport, lagging: set[str] | None = None) -> bool:
    """Only alerts are left, and (with ``lagging``) some of them on components that had a symptom of their
    own (a pod not Ready, a service erring) earlier in the incident: their alerts outlive the symptom by
    the rule's look-back window. Alerts only on components that never showed a symptom (a workload
    scaled to zero has no pod to be unready) do not clear by waiting."""
    if not h.firing_alerts or not all(u.startswith("alert:") for u in h.unhealthy):
        return False
    return lagging is None or bool(unhealthy_components(h.unhealthy) & lagging)


def _lagging(state: IncidentState, before: HealthReport) -> set[str]:
    """Components with a symptom of their own at detection or at the BEGIN of any transaction so far."""
    seen = [before.unhealthy, (state.get("health_detect") or {}).get("unhealthy") or []]
    seen += [(t.get("health_before") or {}).get("unhealthy") or [] for t in state.get("transactions") or []]
    return set().union(*(unhealthy_components(list(symptoms(u))) for u in seen))


def _watch_recovery(cluster: Any, ctx: Context, ns: str, current: HealthReport, waited: float,
                    until_h: float | None = None, floor_h: float | None = None,
                    lagging: set[str] | None = None) -> tuple[HealthReport, float]:
    """Re-measure while the system keeps improving (bounded); stop when healthy, at ``until_h``, stalled,
    or once H falls below ``floor_h``."""
    stalls = 0
    while current.unhealthy and waited < ctx.resolve_wait_s and stalls < 2 and \
            (until_h is None or current.H < until_h) and (floor_h is None or current.H >= floor_h):
        cluster.wait(ctx.alert_poll_s)
        waited += ctx.alert_poll_s
        nxt = assess(cluster, ctx, ns)
        progress = nxt.H > current.H + 1e-3 or len(nxt.unhealthy) < len(current.unhealthy)
        # alerts outlive their symptoms by their look-back window: waiting for them is not a stall
        stalls = 0 if progress or _quiet_but_alerting(nxt, lagging) else stalls + 1
        current = nxt
    return current, waited


def _restarts(cluster: Any, ns: str) -> dict[str, int]:
    """Container restarts per component, from the pods' status."""
    out: dict[str, int] = {}
    for pod in cluster.list("Pod", ns):
        n = sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])
        comp = component_of_pod(pod["metadata"]["name"])
        out[comp] = out.get(comp, 0) + n
    return out


def _confirm_resolved(cluster: Any, ctx: Context, ns: str, clean: HealthReport) -> HealthReport:
    """Health after ``ctx.confirm_s`` more seconds of watching a namespace that looks healthy now.

    A fault can be latent when a fix leaves U empty: a crash-looping pod is Ready between crashes, a
    liveness probe has not failed yet, a restarted client has not yet dialled a dependency that is still
    broken. The incident is resolved only if U stays empty and no container restarts meanwhile; the
    first report that is not clean is returned (a restarting component as ``restarts:<component>``), so
    the incident stays open and Diagnosis looks at what surfaced."""
    base = _restarts(cluster, ns)
    waited, current = 0.0, clean
    while waited < ctx.confirm_s:
        step = min(ctx.alert_poll_s, ctx.confirm_s - waited)
        cluster.wait(step)
        waited += step
        current = assess(cluster, ctx, ns)
        grew = sorted(c for c, n in _restarts(cluster, ns).items() if n > base.get(c, 0))
        if grew:
            current.unhealthy = sorted(set(current.unhealthy) | {f"restarts:{c}" for c in grew})
            return current
        if current.unhealthy:
            # a pod of someone else's rollout is not Ready while it starts: only what stays unhealthy
            # while nothing improves counts (bounded by resolve_wait_s, like any recovery watch)
            current, spent = _watch_recovery(cluster, ctx, ns, current, 0.0)
            waited += spent
            if current.unhealthy:
                return current
    return current


def _nothing_new_blamed(before: HealthReport, after: HealthReport, scope: Scope) -> bool:
    new = unhealthy_components(after.unhealthy) - unhealthy_components(before.unhealthy)
    return not scope.blamed(new, before)


def validate(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Measure the change and apply the TNR gate: commit it, or leave it open for Undo."""
    return judge(state, runtime, gate=True)


def judge(state: IncidentState, runtime: Runtime[Context], *, gate: bool) -> dict[str, Any]:
    """Measure the last transaction's effect and record its TNR verdict.

    The verdict is attributed (DESIGN §6): H before is the health at BEGIN over the window since the
    symptom began, and only what the actions could have affected and was not already developing is
    blamed on them. With ``gate`` (STRATUS), a change that is still settling is watched while it
    recovers (a dip of at most ``ctx.recovery_dip_max`` below ``H_before - eps``), and only a ``commit``
    verdict commits. Without it (the benchmark's baselines) the verdict is recorded but every
    change is committed as it stands.
    """
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    tx = Transaction(**state["transactions"][-1])
    ns = state["namespace"]
    if tx.status == "crashed":
        tx.verdict, tx.verdict_reason = "crashed", "STRATUS stopped mid-transaction; undoing it on resume"
        return {"phase": "validate", "transactions": [tx.model_dump()]}
    before = HealthReport(**tx.health_before) if tx.health_before else assess(cluster, ctx, ns)
    before = with_current_h(before, cluster, ctx, ns)
    scope = scope_of(cluster, ns, [Action(**a) for a in tx.actions], tx.snapshot, since=tx.started_at)
    after = assess(cluster, ctx, ns)
    waited = 0.0
    # alert rules keep firing for their look-back window after symptoms stop: wait for them (bounded)
    lagging = _lagging(state, before)
    while _quiet_but_alerting(after, lagging) and after.H >= before.H - tx.eps and waited < ctx.resolve_wait_s:
        cluster.wait(ctx.alert_poll_s)
        waited += ctx.alert_poll_s
        after = assess(cluster, ctx, ns)
    failed = [r for r in tx.results if not r.get("ok")]
    verdict, reason = tnr_verdict(before, after, tx.eps, ctx.delta, bool(after.unhealthy), scope)
    floor_h = before.H - tx.eps - ctx.recovery_dip_max
    if verdict == "regression" and not failed and gate and after.H >= floor_h and \
            _nothing_new_blamed(before, after, scope):
        # H dipped a little but nothing new broke: give a change that is still settling a bounded chance
        # to recover (its clients may sit in restart back-off) before judging it; a deeper dip is judged
        after, waited = _watch_recovery(cluster, ctx, ns, after, waited, until_h=before.H - tx.eps,
                                        floor_h=floor_h, lagging=lagging)
        verdict, reason = tnr_verdict(before, after, tx.eps, ctx.delta, bool(after.unhealthy), scope)
    if verdict == "ineffective" and not failed and gate:
        # settling stops early for a stuck rollout; clients in restart back-off may still be noticing
        # a repaired dependency: watch while health keeps improving before calling the change useless
        after, waited = _watch_recovery(cluster, ctx, ns, after, waited, lagging=lagging)
        verdict, reason = tnr_verdict(before, after, tx.eps, ctx.delta, bool(after.unhealthy), scope)
    if verdict == "commit" and after.unhealthy and not failed and gate:
        # a good change is still taking effect (clients restarting, alerts clearing): watch it while it
        # makes progress instead of stacking another change on top, then judge the final state again
        after, waited = _watch_recovery(cluster, ctx, ns, after, waited, lagging=lagging)
        verdict, reason = tnr_verdict(before, after, tx.eps, ctx.delta, bool(after.unhealthy), scope)
    left: list[dict[str, Any]] = []
    if verdict == "commit" and not after.unhealthy and not failed and gate:
        after = _confirm_resolved(cluster, ctx, ns, after)
        left = [] if after.unhealthy else open_leftovers(ctx, cluster, state)
    if failed and verdict == "commit":
        verdict, reason = "ineffective", f"an action failed: {failed[0].get('message', '')}"
    tx.health_before, tx.health_after = before.model_dump(), after.model_dump()
    tx.verdict, tx.verdict_reason = verdict, reason
    if not gate:
        verdict = "commit"
    if verdict == "commit":
        tx.status, tx.ended_at = "committed", cluster.now()
        cluster.release_lock(ns, state["incident_id"])
    point = {"t": after.at, "H": after.H, "phase": "validate", "tx": tx.id, "verdict": tx.verdict}
    return {"phase": "validate", "transactions": [tx.model_dump()], "health_latest": after.model_dump(),
            "health_history": [point], "leftovers": left}
