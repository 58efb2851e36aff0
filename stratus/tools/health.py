"""Health H and the TNR verdict, from telemetry only (the same PromQL on the twin and on Prometheus).

``H = 0.5*A - 0.3*E - 0.2*L`` over a window: A is the share of user requests that succeed at the
entry point (the load generator's client spans, or the entry services' server spans when no load
generator reports), E the request-weighted error ratio across services, L the normalised p99 latency
at the entry point. U is the set of unhealthy components: pods not Ready, services erring above 5%,
firing alerts.
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Any, Literal

from stratus.cluster.base import Cluster
from stratus.context import Context
from stratus.state import HealthReport

ERROR_THRESHOLD = 0.05
_POD_NAME = re.compile(r"^(?P<base>.+?)(-[a-z0-9]{8,10})?-[a-z0-9]{5}$")
IGNORED_ALERTS = {"Watchdog", "InfoInhibitor"}


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


def measure(cluster: Cluster, ctx: Context, namespace: str, at: float | None = None) -> HealthReport:
    at = cluster.now() if at is None else at
    w = _window(ctx.window_s)
    ns = f'namespace="{namespace}"'
    clients = "|".join(ctx.client_services)
    entries = "|".join(ctx.entry_services)
    calls = "traces_span_metrics_calls_total"
    client_sel = f'{ns}, service_name=~"{clients}", span_kind="SPAN_KIND_CLIENT"'
    total = _scalar(cluster.query(f"sum(rate({calls}{{{client_sel}}}[{w}]))", at))
    entry_sel = client_sel
    if not total:
        entry_sel = f'{ns}, service_name=~"{entries}", span_kind="SPAN_KIND_SERVER"'
        total = _scalar(cluster.query(f"sum(rate({calls}{{{entry_sel}}}[{w}]))", at))
    if total:
        errs = _scalar(cluster.query(
            f'sum(rate({calls}{{{entry_sel}, status_code="STATUS_CODE_ERROR"}}[{w}]))', at)) or 0.0
        availability = max(0.0, 1.0 - errs / total)
    else:
        availability = 0.0
    server = f'{ns}, span_kind="SPAN_KIND_SERVER"'
    s_total = _scalar(cluster.query(f"sum(rate({calls}{{{server}}}[{w}]))", at)) or 0.0
    s_err = _scalar(cluster.query(f'sum(rate({calls}{{{server}, status_code="STATUS_CODE_ERROR"}}[{w}]))', at))
    error_ratio = (s_err or 0.0) / s_total if s_total else (0.0 if total else 1.0)
    p99 = _scalar(cluster.query(
        f"histogram_quantile(0.99, sum by (le) (rate(traces_span_metrics_duration_milliseconds_bucket"
        f"{{{entry_sel}}}[{w}])))", at))
    slo = ctx.latency_slo_ms
    latency_norm = 0.0 if p99 is None else min(1.0, max(0.0, (p99 - slo) / (3 * slo)))
    if not total:
        latency_norm = 1.0
    H = 0.5 * availability - 0.3 * error_ratio - 0.2 * latency_norm
    unhealthy: set[str] = set()
    notready = cluster.query(f'kube_pod_status_ready{{{ns}, condition="true"}} == 0', at)
    for r in notready.get("result", []):
        unhealthy.add(f"pod:{component_of_pod(r['metric'].get('pod', ''))}")
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
    return HealthReport(at=at, window_s=ctx.window_s, availability=round(availability, 5),
                        error_ratio=round(error_ratio, 5), latency_norm=round(latency_norm, 5),
                        p99_ms=None if p99 is None else round(p99, 2), requests_per_s=round(total or 0.0, 3),
                        H=round(H, 5), unhealthy=sorted(unhealthy), firing_alerts=sorted(set(firing)))


def noise_eps(cluster: Cluster, ctx: Context, namespace: str, end: float | None = None) -> float:
    """TNR tolerance: max(eps_floor, 3 sigma of H over the baseline window), capped at ``eps_cap``.

    The window before detection usually contains the fault's onset, a level shift that is not noise.
    sigma is therefore estimated from successive differences with the median absolute deviation
    (sigma = 1.4826 * median|dH| / sqrt(2)), which one or two jumps cannot inflate."""
    end = cluster.now() if end is None else end
    step = max(15.0, ctx.baseline_s / 8)
    values = []
    t = end - ctx.baseline_s
    while t <= end + 1e-6:
        values.append(measure(cluster, ctx, namespace, at=t).H)
        t += step
    diffs = [abs(b - a) for a, b in zip(values, values[1:])]
    sigma = 1.4826 * statistics.median(diffs) / math.sqrt(2) if diffs else 0.0
    return round(min(ctx.eps_cap, max(ctx.eps_floor, 3 * sigma)), 5)


Verdict = Literal["commit", "regression", "ineffective"]


def unhealthy_components(unhealthy: list[str]) -> set[str]:
    """Components named by U's entries (``pod:geo``, ``alert:KubePodCrashLooping:geo`` -> ``geo``).

    TNR compares components, not signals: an alert whose ``for`` delay elapses after a change is not a new
    failure when its component was already unhealthy before the change."""
    return {u.rsplit(":", 1)[-1] for u in unhealthy}


def tnr_verdict(before: HealthReport, after: HealthReport, eps: float, delta: float,
                incident_open: bool) -> tuple[Verdict, str]:
    """The TNR gate (DESIGN §6.7) for one transaction."""
    if after.H < before.H - eps:
        return "regression", f"H fell from {before.H:.4f} to {after.H:.4f} (eps {eps:.4f})"
    was, now = unhealthy_components(before.unhealthy), unhealthy_components(after.unhealthy)
    new_bad = sorted(now - was)
    if new_bad:
        detail = [u for u in after.unhealthy if u.rsplit(":", 1)[-1] in new_bad]
        return "regression", f"newly unhealthy: {', '.join(detail)}"
    if incident_open:
        gained = after.H - before.H >= delta
        fewer = now < was or set(after.unhealthy) < set(before.unhealthy)
        if not gained and not fewer:
            return "ineffective", (f"incident still open and the change neither raised H by {delta} "
                                   f"({before.H:.4f} -> {after.H:.4f}) nor cleared an unhealthy component")
    return "commit", f"H {before.H:.4f} -> {after.H:.4f}; unhealthy {len(before.unhealthy)} -> {len(after.unhealthy)}"
