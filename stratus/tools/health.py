"""Health H and the TNR verdict, from telemetry only (the same PromQL on the twin and on Prometheus).

``H = 0.5*A - 0.3*E - 0.2*L`` over a window: A is the share of user requests that succeed at the
entry point (the load generator's client spans, or the entry services' server spans when no load
generator reports), E the request-weighted error ratio across services, L the normalised p99 latency
at the entry point. U is the set of unhealthy components: pods not Ready, services erring above 5%,
firing alerts.

The verdict attributes: it weighs only the components an action could have affected (``Scope``: the
touched components and their callers) and what was not already developing at BEGIN (pending alerts,
fresh errors, a fault still spreading from an untouched component to its callers), and a fall of H that
faults the change exposed explain (``exposed``: in a compound incident a right fix lets traffic reach
another broken service) is not the change's.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from stratus.cluster.base import Cluster
from stratus.context import Context
from stratus.state import HealthReport

ERROR_THRESHOLD = 0.05
_POD_NAME = re.compile(r"^(?P<base>.+?)(-[a-z0-9]{8,10})?-[a-z0-9]{5}$")
IGNORED_ALERTS = {"Watchdog", "InfoInhibitor"}
RECENT_S = 30.0
"""Shortest measurement window (two scrapes): the "most recent sub-window" of the health at a moment."""
SYMPTOMS = ("pod:", "errors:")
"""U entries that are a component's own state (with its count of Ready pods). Alerts and analyzer findings
are reports about it: one can clear (a rollout resets its clock, a new ReplicaSet has no failures yet)
while the component stays as bad."""


def _scalar(result: dict[str, Any]) -> float | None:
    """Sum of an instant-vector result (None when empty)."""
    rows = result.get("result") or []
    if result.get("resultType") == "scalar":
        return float(rows[1])
    vals = [float(r["value"][1]) for r in rows if r.get("value")]
    vals = [v for v in vals if not math.isnan(v)]
    return sum(vals) if vals else None


def component_of_pod(pod: str) -> str:
    m = _POD_NAME.match(pod)
    return m.group("base") if m else pod


def _window(seconds: float) -> str:
    return f"{int(max(seconds, 30))}s"


def alert_component(labels: dict[str, str]) -> str:
    for key in ("deployment", "service_name", "service", "statefulset", "daemonset"):
        if labels.get(key):
            return labels[key]
    if labels.get("pod"):
        return component_of_pod(labels["pod"])
    return labels.get("namespace", "cluster")


@dataclass(frozen=True)
class _Score:
    """H and its parts at one instant, with the selectors ``measure`` reuses for U."""

    H: float
    availability: float
    error_ratio: float
    latency_norm: float
    p99: float | None
    total: float | None
    server: str


def _score(cluster: Cluster, ctx: Context, namespace: str, at: float, window_s: float) -> _Score:
    """H alone at ``at``: the queries ``measure`` makes for it and nothing more."""
    return _score_from(lambda q: _scalar(cluster.query(q, at)), ctx, namespace, window_s)


def _score_from(value: Callable[[str], float | None], ctx: Context, namespace: str, window_s: float) -> _Score:
    """H from ``value`` (a PromQL expression's scalar at the instant scored; ``noise_eps`` answers it
    from range queries)."""
    w = _window(window_s)
    ns = f'namespace="{namespace}"'
    clients = "|".join(ctx.client_services)
    entries = "|".join(ctx.entry_services)
    calls = "traces_span_metrics_calls_total"
    client_sel = f'{ns}, service_name=~"{clients}", span_kind="SPAN_KIND_CLIENT"'
    total = value(f"sum(rate({calls}{{{client_sel}}}[{w}]))")
    entry_sel = client_sel
    if not total:
        entry_sel = f'{ns}, service_name=~"{entries}", span_kind="SPAN_KIND_SERVER"'
        total = value(f"sum(rate({calls}{{{entry_sel}}}[{w}]))")
    if total:
        errs = value(
            f'sum(rate({calls}{{{entry_sel}, status_code="STATUS_CODE_ERROR"}}[{w}]))') or 0.0
        availability = max(0.0, 1.0 - errs / total)
    else:
        availability = 0.0
    server = f'{ns}, span_kind="SPAN_KIND_SERVER"'
    s_total = value(f"sum(rate({calls}{{{server}}}[{w}]))") or 0.0
    s_err = value(f'sum(rate({calls}{{{server}, status_code="STATUS_CODE_ERROR"}}[{w}]))')
    error_ratio = (s_err or 0.0) / s_total if s_total else (0.0 if total else 1.0)
    p99 = value(
        f"histogram_quantile(0.99, sum by (le) (rate(traces_span_metrics_duration_milliseconds_bucket"
        f"{{{entry_sel}}}[{w}])))")
    slo = ctx.latency_slo_ms
    latency_norm = 0.0 if p99 is None else min(1.0, max(0.0, (p99 - slo) / (3 * slo)))
    if not total:
        latency_norm = 1.0
    H = 0.5 * availability - 0.3 * error_ratio - 0.2 * latency_norm
    return _Score(H, availability, error_ratio, latency_norm, p99, total, server)


def measure(cluster: Cluster, ctx: Context, namespace: str, at: float | None = None,
            window_s: float | None = None) -> HealthReport:
    """H and U at ``at`` (default now) over ``window_s`` (default ``ctx.window_s``)."""
    at = cluster.now() if at is None else at
    window_s = ctx.window_s if window_s is None else window_s
    sc = _score(cluster, ctx, namespace, at, window_s)
    w, ns, server, calls = _window(window_s), f'namespace="{namespace}"', sc.server, "traces_span_metrics_calls_total"
    unhealthy: set[str] = set()
    ready: dict[str, int] = {}
    for r in cluster.query(f'kube_pod_status_ready{{{ns}, condition="true"}}', at).get("result", []):
        component = component_of_pod(r["metric"].get("pod", ""))
        if float(r["value"][1]) == 0:
            unhealthy.add(f"pod:{component}")
        else:
            ready[component] = ready.get(component, 0) + 1
    by_svc = cluster.query(
        f'sum by (service_name) (rate({calls}{{{server}, status_code="STATUS_CODE_ERROR"}}[{w}])) / '
        f"sum by (service_name) (rate({calls}{{{server}}}[{w}])) > {ERROR_THRESHOLD}", at)
    for r in by_svc.get("result", []):
        unhealthy.add(f"errors:{r['metric'].get('service_name', '')}")
    firing = []
    for a in cluster.alerts():
        labels = a.get("labels", {})
        if labels.get("alertname") in IGNORED_ALERTS or labels.get("namespace") not in (None, namespace):
            continue
        name = f"{labels.get('alertname')}:{alert_component(labels)}"
        firing.append(name)
        unhealthy.add(f"alert:{name}")
    developing = _developing(cluster, namespace, at, server)
    return HealthReport(at=at, window_s=window_s, developing=sorted(developing), ready=ready,
                        availability=round(sc.availability, 5), error_ratio=round(sc.error_ratio, 5),
                        latency_norm=round(sc.latency_norm, 5), p99_ms=None if sc.p99 is None else round(sc.p99, 2),
                        requests_per_s=round(sc.total or 0.0, 3), H=round(sc.H, 5), unhealthy=sorted(unhealthy),
                        firing_alerts=sorted(set(firing)))


def _developing(cluster: Cluster, namespace: str, at: float, server: str) -> set[str]:
    """Components whose trouble has begun but not yet shown in U: pending alerts, and services erring
    above the threshold over the most recent sub-window."""
    out = set()
    pending = cluster.query(f'ALERTS{{namespace="{namespace}", alertstate="pending"}}', at)
    for r in pending.get("result", []):
        if r["metric"].get("alertname") not in IGNORED_ALERTS:
            out.add(alert_component(r["metric"]))
    calls, w = "traces_span_metrics_calls_total", _window(RECENT_S)
    fresh = cluster.query(
        f'sum by (service_name) (rate({calls}{{{server}, status_code="STATUS_CODE_ERROR"}}[{w}])) / '
        f"sum by (service_name) (rate({calls}{{{server}}}[{w}])) > {ERROR_THRESHOLD}", at)
    out.update(r["metric"].get("service_name", "") for r in fresh.get("result", []))
    out.discard("")
    return out


def symptom_onset(cluster: Cluster, namespace: str, at: float) -> float | None:
    """When the oldest alert pending or firing at ``at`` became active (``ALERTS_FOR_STATE``), if any."""
    res = cluster.query(f'ALERTS_FOR_STATE{{namespace="{namespace}"}}', at)
    starts = [float(r["value"][1]) for r in res.get("result", [])
              if r.get("value") and r["metric"].get("alertname") not in IGNORED_ALERTS]
    return min(starts) if starts else None


def measure_current(cluster: Cluster, ctx: Context, namespace: str, at: float | None = None) -> HealthReport:
    """Health at ``at`` over the window since the symptom began (at least ``RECENT_S``, at most
    ``ctx.window_s``), so healthy samples from before the symptom do not flatter it."""
    at = cluster.now() if at is None else at
    onset = symptom_onset(cluster, namespace, at)
    window = ctx.window_s if onset is None else min(ctx.window_s, max(RECENT_S, at - onset))
    return measure(cluster, ctx, namespace, at=at, window_s=window)


H_FIELDS = ("window_s", "availability", "error_ratio", "latency_norm", "p99_ms", "requests_per_s", "H")


def with_current_h(report: HealthReport, cluster: Cluster, ctx: Context, namespace: str) -> HealthReport:
    """``report`` with H (and its parts) replaced by the health since the symptom began at its time."""
    current = measure_current(cluster, ctx, namespace, at=report.at)
    return report.model_copy(update={k: getattr(current, k) for k in H_FIELDS})


class _Sampled:
    """Scalars of PromQL expressions at ``n`` instants ``step`` apart from ``start``: one range query per
    expression instead of one instant query per expression and instant (the same values: a range query
    is the instant query evaluated at each step)."""

    def __init__(self, cluster: Cluster, start: float, step: float, n: int) -> None:
        self.cluster, self.start, self.step, self.n = cluster, start, step, n
        self._got: dict[str, list[float | None]] = {}

    def at(self, i: int, expr: str) -> float | None:
        """``expr``'s scalar at the ``i``-th instant (None when empty there), as ``_scalar`` reads it."""
        got = self._got.get(expr)
        if got is None:
            data = self.cluster.query_range(expr, self.start, self.start + (self.n - 1) * self.step, self.step)
            vals: list[list[float]] = [[] for _ in range(self.n)]
            for row in data.get("result") or []:
                for t, v in row.get("values") or []:
                    k = round((float(t) - self.start) / self.step)
                    if 0 <= k < self.n and not math.isnan(float(v)):
                        vals[k].append(float(v))
            got = self._got[expr] = [sum(v) if v else None for v in vals]
        return got[i]


def noise_eps(cluster: Cluster, ctx: Context, namespace: str, end: float | None = None) -> float:
    """TNR tolerance: max(eps_floor, 3 sigma of H over the baseline window), capped at ``eps_cap``.

    The window before detection usually contains the fault's onset, a level shift that is not noise.
    sigma is therefore estimated from successive differences with the median absolute deviation
    (sigma = 1.4826 * median|dH| / sqrt(2)), which one or two jumps cannot inflate. H is sampled every
    ``step`` with a handful of range queries (a remote Prometheus answers each in one round trip)."""
    end = cluster.now() if end is None else end
    step = max(15.0, ctx.baseline_s / 8)
    n = math.floor((ctx.baseline_s + 1e-6) / step) + 1
    sampled = _Sampled(cluster, end - ctx.baseline_s, step, n)
    # H alone: U's queries and the alert list are not needed for the noise
    values = [round(_score_from(partial(sampled.at, i), ctx, namespace, ctx.window_s).H, 5) for i in range(n)]
    diffs = [abs(b - a) for a, b in zip(values, values[1:])]
    sigma = 1.4826 * statistics.median(diffs) / math.sqrt(2) if diffs else 0.0
    return round(min(ctx.eps_cap, max(ctx.eps_floor, 3 * sigma)), 5)


Verdict = Literal["commit", "regression", "ineffective"]


@dataclass(frozen=True)
class Scope:
    """What a transaction's actions could have affected.

    Attributes:
        touched: components the actions change (``None``: anything, e.g. a Node or an unknown kind).
        callees: component -> every component it calls, directly or not (the call graph).
        admitted: touched components that no action changes, only lets start pods (a quota or a
            LimitRange deleted, a node uncordoned or untainted): their new pods run their own spec.
    """

    touched: frozenset[str] | None
    callees: dict[str, frozenset[str]] = field(default_factory=dict)
    admitted: frozenset[str] = frozenset()

    def reaches(self, component: str) -> bool:
        """Whether the actions could have affected ``component``: touched, or calling a touched one."""
        if self.touched is None or component in self.touched:
            return True
        known = component in self.callees or any(component in c for c in self.callees.values())
        return not known or bool(self.callees.get(component, frozenset()) & self.touched)

    def blamed(self, new_bad: set[str], before: HealthReport) -> set[str]:
        """The newly unhealthy components the actions answer for.

        Excused: components out of the actions' reach, components already developing at BEGIN (pending
        alert, fresh errors), and untouched components calling one that was already failing or developing
        at BEGIN and is itself untouched (that fault is still spreading to its callers)."""
        developing = set(before.developing)
        prior = unhealthy_components(before.unhealthy) | developing
        untouched_prior = set() if self.touched is None else prior - self.touched
        out = set()
        for c in new_bad:
            if not self.reaches(c) or c in developing:
                continue
            if (self.touched is None or c not in self.touched) and self.callees.get(c, frozenset()) & untouched_prior:
                continue
            out.add(c)
        return out


def unhealthy_components(unhealthy: list[str]) -> set[str]:
    """Components named by U's entries (``pod:geo``, ``alert:KubePodCrashLooping:geo`` -> ``geo``).

    TNR compares components, not signals: an alert whose ``for`` delay elapses after a change is not a new
    failure when its component was already unhealthy before the change."""
    return {u.rsplit(":", 1)[-1] for u in unhealthy}


def symptoms(unhealthy: list[str]) -> set[str]:
    """The entries of U that are a component's own state (pods not Ready, services erring)."""
    return {u for u in unhealthy if u.startswith(SYMPTOMS)}


def _fall_excused(before: HealthReport, after: HealthReport, new_bad: set[str], blamed: list[str],
                  scope: Scope | None) -> bool:
    """Whether a fall of H is another fault surfacing, not this change's doing.

    In a compound incident a second fault can surface while the first one's fix settles (a liveness
    probe that starts failing, a rollout that reaches a broken template). H is one number for the whole
    namespace, so it falls; the change is not answerable when every newly unhealthy component is out of
    its reach or already developing (``Scope.blamed`` excuses it) and none is downstream of a component
    it touched (whose traffic it may have cut), and the change made progress where it acts: a symptom
    cleared on a component it reaches that serves with as many Ready pods as before (errors that stop
    because the pods are gone are no progress), or one of them has a Ready pod again.
    """
    if scope is None or scope.touched is None or not new_bad or blamed:
        return False
    downstream = set().union(*(scope.callees.get(t, frozenset()) for t in scope.touched))
    if new_bad & downstream:
        return False  # the change may have cut their traffic
    # a symptom cleared by a component that still serves as many pods (not one silenced by removing it)
    cleared = {c for c in (u.rsplit(":", 1)[-1] for u in symptoms(before.unhealthy) - symptoms(after.unhealthy))
               if after.ready.get(c, 0) >= max(1, before.ready.get(c, 0))}
    back = {c for c in unhealthy_components(before.unhealthy) if not before.ready.get(c) and after.ready.get(c)}
    return any(scope.reaches(c) for c in cleared | back)


FINDING = "latent:"
"""U entries that are a static configuration finding (an analyzer's, from manifests alone)."""


def worsened(before: HealthReport, after: HealthReport) -> set[str]:
    """Components that got worse: a U entry they did not have at BEGIN (findings aside: a configuration
    read is no worse for traffic), or trouble newly developing. A component with no Ready pod at BEGIN
    that has one now is not worse, whatever it reports: the errors it serves now are answers it could
    not give before."""
    had = set(before.unhealthy)
    grew = {u.rsplit(":", 1)[-1] for u in after.unhealthy if u not in had and not u.startswith(FINDING)}
    back = {c for c, n in after.ready.items() if n and not before.ready.get(c)}
    return (grew | (set(after.developing) - set(before.developing))) - back


def local_progress(before: HealthReport, after: HealthReport, scope: Scope) -> set[str]:
    """Where the change made progress where it acts (a known ``scope.touched``): a symptom cleared on a
    touched component or one of its callers that serves with as many Ready pods as before, or a static
    finding cleared on an untouched caller (its reference to the touched objects resolves now; a change
    to a workload can reset that workload's own findings, never its caller's configuration)."""
    touched = scope.touched or frozenset()
    callers = {c for c, callees in scope.callees.items() if callees & touched} - touched
    out = {c for c in (u.rsplit(":", 1)[-1] for u in symptoms(before.unhealthy) - symptoms(after.unhealthy))
           if c in touched | callers and after.ready.get(c, 0) >= max(1, before.ready.get(c, 0))}
    gone = {u for u in before.unhealthy if u.startswith(FINDING)} - set(after.unhealthy)
    return out | ({u.rsplit(":", 1)[-1] for u in gone} & callers)


def exposed(before: HealthReport, after: HealthReport, scope: Scope | None) -> tuple[set[str], set[str]]:
    """The faults a change exposed and the components they spread to, when together they explain
    everything that got worse (else two empty sets).

    In a compound incident a right fix can let traffic reach another fault it masked (a client that
    reaches its server again now waits on that server's broken database): H falls, yet the change did
    no harm. An exposed fault is a component that got worse and already had its own problem at BEGIN
    (unhealthy or developing), and either is neither touched nor a callee of a touched component (whose
    traffic the change may have cut) nor a caller of one (whose calls to it may fail now), or is no such
    caller and already had a pod not Ready at BEGIN and lost no Ready pod (it was failing on its own:
    restarting it with the rest of a plan changed nothing there). Everything else that got worse must be
    untouched and call an exposed fault (the fault spreading to its callers, which may have been healthy
    while the traffic did not reach it); a callee of a touched component only if it errs (a cut of its
    traffic starves it, but cannot make it answer with errors). And the change made ``local_progress``:
    a change that breaks something shows no progress where it acts."""
    none: tuple[set[str], set[str]] = (set(), set())
    if scope is None or scope.touched is None:
        return none
    worse = worsened(before, after)
    prior = unhealthy_components(before.unhealthy) | set(before.developing)
    touched = set(scope.touched)
    callees = touched.union(*(scope.callees.get(t, frozenset()) for t in touched))
    callers = {c for c, down in scope.callees.items() if down & touched}
    failing = {c.split(":", 1)[1] for c in before.unhealthy if c.startswith("pod:")}
    found = {c for c in worse if c in prior and c not in callers and (c not in callees or (
        c in failing and after.ready.get(c, 0) >= before.ready.get(c, 0)))}
    erring = {c for c in worse if f"errors:{c}" in after.unhealthy or c in after.developing}
    spread = {c for c in worse - found - touched
              if scope.callees.get(c, frozenset()) & found and (c not in callees or c in erring)}
    if not found or worse - found - spread or not local_progress(before, after, scope):
        return none
    return found, spread


def _podless(before: HealthReport, after: HealthReport, new_bad: set[str], scope: Scope | None) -> set[str]:
    """Untouched newcomers with no pod before or after the change (a deleted workload whose callers now
    reach its name): nothing of theirs runs for the change to have broken."""
    if scope is None or scope.touched is None:
        return set()
    pods = set(before.ready) | set(after.ready) | {
        u.split(":", 1)[1] for u in before.unhealthy + after.unhealthy if u.startswith("pod:")}
    return new_bad - pods - scope.touched


def tnr_verdict(before: HealthReport, after: HealthReport, eps: float, delta: float,
                incident_open: bool, scope: Scope | None = None) -> tuple[Verdict, str]:
    """The TNR gate (DESIGN §6.7) for one transaction.

    ``before`` is the health at BEGIN (its H over the window since the symptom began); ``scope`` limits
    the blame for newly unhealthy components to what the actions could have affected (``None``: blame
    every new one), and a fall of H that only out-of-reach newcomers explain is not the change's
    (``_fall_excused``), nor is one that a fault the change ``exposed`` explains. Progress is a gain of
    ``delta`` in H, a symptom that cleared, an unhealthy component with no Ready pod that has one again
    (a database scaled back up), or an exposed fault (the change made progress where it acts): an alert
    or a finding clearing while the component's own state did not improve (a restart resets alert clocks
    and rollout history) is not progress."""
    was, now = unhealthy_components(before.unhealthy), unhealthy_components(after.unhealthy)
    new_bad = now - was
    shown, spread = exposed(before, after, scope) if after.H < before.H - eps else (set(), set())
    blamed = sorted((new_bad if scope is None else scope.blamed(new_bad, before)) - spread
                    - _podless(before, after, new_bad, scope)
                    # pods a change only let start fail by their own spec, which it did not change
                    - (scope.admitted if scope is not None and after.H >= before.H - eps else frozenset()))
    if after.H < before.H - eps and not shown and not _fall_excused(before, after, new_bad, blamed, scope):
        return "regression", f"H fell from {before.H:.4f} to {after.H:.4f} (eps {eps:.4f})"
    if blamed:
        detail = [u for u in after.unhealthy if u.rsplit(":", 1)[-1] in blamed]
        return "regression", f"newly unhealthy: {', '.join(detail)}"
    excused = sorted(new_bad - set(blamed))
    note = f"; not attributed to the change: {', '.join(excused)}" if excused else ""
    if shown:
        note += f"; H fell as it exposed the untouched fault(s) at {', '.join(sorted(shown))}"
    if incident_open:
        gained = after.H - before.H >= delta
        cleared = symptoms(before.unhealthy) - symptoms(after.unhealthy)
        back = {c for c in was if not before.ready.get(c) and after.ready.get(c)}
        if not gained and not cleared and not back and not shown:
            return "ineffective", (f"incident still open and the change neither raised H by {delta} "
                                   f"({before.H:.4f} -> {after.H:.4f}) nor cleared a symptom (pod not Ready, "
                                   f"service erring, no Ready pod){note}")
    return "commit", (f"H {before.H:.4f} -> {after.H:.4f}; unhealthy {len(before.unhealthy)} -> "
                      f"{len(after.unhealthy)}{note}")
