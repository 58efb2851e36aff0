"""Read-only investigation tools over the Cluster protocol, for agents and humans.

Every function returns compact, redacted text bounded in size; anything cut off ends with an explicit
"... N more omitted" marker so a model knows to narrow its query instead of assuming completeness.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import yaml

from stratus.cluster.base import Cluster, ClusterError
from stratus.tools.analyzers import run_all
from stratus.tools.health import component_of_pod
from stratus.tools.redact import redact_manifest, redact_text

MAX_CHARS = 4000
MAX_LINES = 40


def _bound_lines(lines: list[str], limit: int = MAX_LINES, what: str = "lines", hidden: int = 0,
                 newest_last: bool = False) -> str:
    """At most ``limit`` lines plus a marker counting what was cut (``hidden`` more were cut upstream).

    With ``newest_last`` (logs) the last lines are kept and the marker goes first."""
    cut = max(0, len(lines) - limit) + hidden
    if newest_last:
        text = "\n".join(lines[-limit:])
        if cut:
            text = f"... {cut} earlier {what} omitted\n" + text
            return text if len(text) <= MAX_CHARS else \
                f"... {len(text) - MAX_CHARS} earlier characters omitted\n" + text[-MAX_CHARS:]
        return text if len(text) <= MAX_CHARS else \
            f"... {len(text) - MAX_CHARS} earlier characters omitted\n" + text[-MAX_CHARS:]
    text = "\n".join(lines[:limit])
    if cut:
        text += f"\n... {cut} more {what} omitted"
    return _bound_chars(text)


_OMITTED = re.compile(r"\.\.\. (\d+) more")


def _split_omitted(items: list[Any]) -> tuple[list[Any], int]:
    """Separate a listing from the cluster's own "N more omitted" marker (and count what it hid)."""
    real, hidden = [], 0
    for o in items:
        if isinstance(o, dict) and o.get("kind") == "Omitted":
            m = _OMITTED.search(o.get("message", ""))
            hidden += int(m.group(1)) if m else 0
        elif isinstance(o, str) and o.startswith("... ") and "omitted" in o:
            m = _OMITTED.search(o)
            hidden += int(m.group(1)) if m else 0
        else:
            real.append(o)
    return real, hidden


def _bound_chars(text: str, limit: int = MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... {len(text) - limit} more characters omitted"


def _pod_status(p: dict[str, Any]) -> str:
    st = p.get("status", {})
    for cs in st.get("containerStatuses", []):
        waiting = cs.get("state", {}).get("waiting")
        if waiting:
            return waiting.get("reason", "Waiting")
    for cond in st.get("conditions", []):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return "Pending(Unschedulable)"
    return st.get("phase", "Unknown")


def list_objects(cluster: Cluster, kind: str, namespace: str, selector: dict[str, str] | None = None) -> str:
    """One line per object: pods with ready/status/restarts, deployments with replicas, others by name."""
    items, hidden = _split_omitted(cluster.list(kind, namespace, selector))
    lines = []
    for o in items:
        name = o["metadata"]["name"]
        if kind == "Pod":
            cs = o.get("status", {}).get("containerStatuses", [])
            ready = sum(1 for c in cs if c.get("ready"))
            restarts = sum(c.get("restartCount", 0) for c in cs)
            lines.append(f"{name}  ready {ready}/{len(o['spec']['containers'])}  {_pod_status(o)}  "
                         f"restarts {restarts}  node {o['spec'].get('nodeName', '<none>')}")
        elif kind == "Deployment":
            st = o.get("status", {})
            lines.append(f"{name}  replicas {o['spec'].get('replicas')}  ready {st.get('readyReplicas', 0)}  "
                         f"updated {st.get('updatedReplicas', 0)}  available {st.get('availableReplicas', 0)}")
        elif kind == "Service":
            ports = ",".join(f"{p.get('port')}->{p.get('targetPort')}" for p in o["spec"].get("ports", []))
            lines.append(f"{name}  selector {o['spec'].get('selector')}  ports {ports}")
        else:
            lines.append(name)
    if not lines:
        return f"no {kind} objects in namespace {namespace}"
    return _bound_lines(lines, what=f"{kind} objects", hidden=hidden)


def get_object(cluster: Cluster, kind: str, name: str, namespace: str) -> str:
    """The object's manifest as YAML (redacted, server-managed noise removed)."""
    try:
        obj = cluster.get(kind, name, namespace)
    except ClusterError as exc:
        return f"error: {exc}"
    return _bound_chars(yaml.safe_dump(redact_manifest(obj), sort_keys=False, width=120))


def events(cluster: Cluster, namespace: str, since_s: float = 900.0, name: str | None = None,
           warnings_only: bool = False) -> str:
    evs, hidden = _split_omitted(cluster.events(namespace, since=cluster.now() - since_s, limit=500))
    lines = []
    for e in reversed(evs):
        obj = e.get("involvedObject", {})
        if name and name not in obj.get("name", ""):
            continue
        if warnings_only and e.get("type") != "Warning":
            continue
        count = f" (x{e['count']})" if e.get("count", 1) > 1 else ""
        lines.append(f"{e.get('lastTimestamp', '')} {e.get('type')} {e.get('reason')} "
                     f"{obj.get('kind')}/{obj.get('name')}: {redact_text(e.get('message', ''))}{count}")
    return _bound_lines(lines, what="events", hidden=hidden) if lines else "no matching events"


def describe(cluster: Cluster, kind: str, name: str, namespace: str) -> str:
    return get_object(cluster, kind, name, namespace) + "\nEvents:\n" + events(cluster, namespace, name=name)


def pod_logs(cluster: Cluster, pod: str, namespace: str, grep: str | None = None, tail: int = 100,
             previous: bool = False, container: str | None = None) -> str:
    try:
        lines = cluster.logs(pod, namespace, container=container, tail=max(tail, 1) * 5 if grep else tail,
                             previous=previous)
    except ClusterError as exc:
        return f"error: {exc}"
    if grep:
        try:
            rx = re.compile(grep, re.IGNORECASE)
        except re.error as exc:
            return f"error: invalid grep pattern {grep!r}: {exc}"
        lines = [line for line in lines if rx.search(line)]
    lines, _earlier = _split_omitted(lines)  # the cluster's marker counts lines before the tail asked for
    lines = [redact_text(line) for line in lines[-tail:]]
    return _bound_lines(lines, what="log lines", newest_last=True) if lines else "no matching log lines"


def _fmt_series(metric: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k not in ("job", "instance")) + "}"


def promql(cluster: Cluster, query: str) -> str:
    try:
        res = cluster.query(query)
    except Exception as exc:  # PromQL errors come back to the model as data
        return f"error: {exc}"
    if res.get("resultType") in ("scalar", "string"):
        return f"{res['resultType']}: {res['result'][1]}"
    lines = [f"{_fmt_series(r['metric'])} {r['value'][1]}" for r in res.get("result", [])]
    return _bound_lines(lines, what="series") if lines else "empty result (no series matched)"


def promql_range(cluster: Cluster, query: str, minutes: float = 15.0, step_s: float = 60.0) -> str:
    end = cluster.now()
    try:
        res = cluster.query_range(query, end - minutes * 60, end, step_s)
    except Exception as exc:
        return f"error: {exc}"
    lines = []
    for r in res.get("result", []):
        vals = [float(v) for _, v in r.get("values", [])]
        finite = [v for v in vals if v == v]
        if not finite:
            continue
        lines.append(f"{_fmt_series(r['metric'])} first {finite[0]:.4g} min {min(finite):.4g} "
                     f"max {max(finite):.4g} last {finite[-1]:.4g} ({len(vals)} points)")
    return _bound_lines(lines, what="series") if lines else "empty result (no series matched)"


def trace_summary(cluster: Cluster, service: str | None = None, minutes: float = 5.0) -> str:
    """Traces summarised into an error call graph: caller -> callee, calls, errors, latency, sample error."""
    trs = cluster.traces(service, since=cluster.now() - minutes * 60, limit=100)
    edges: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"n": 0, "err": 0, "ms": [], "msg": ""})
    for tr in trs:
        for s in tr.get("spans", []):
            if s.get("kind") != "CLIENT":
                continue
            e = edges[(s["service"], s.get("peer", "?"))]
            e["n"] += 1
            e["ms"].append(s.get("duration_ms", 0.0))
            if s.get("status") == "ERROR":
                e["err"] += 1
                e["msg"] = e["msg"] or redact_text(s.get("error", ""))[:160]
    lines = []
    for (caller, callee), e in sorted(edges.items(), key=lambda kv: (-kv[1]["err"], kv[0])):
        ms = sorted(e["ms"])
        p50 = ms[len(ms) // 2] if ms else 0.0
        line = f"{caller} -> {callee}: {e['n']} calls, {e['err']} errors, p50 {p50:.0f} ms"
        if e["msg"]:
            line += f", e.g. {e['msg']}"
        lines.append(line)
    return _bound_lines(lines, what="edges") if lines else f"no traces in the last {minutes:g} minutes"


def firing_alerts(cluster: Cluster, namespace: str) -> str:
    lines = []
    for a in cluster.alerts():
        labels = a.get("labels", {})
        if labels.get("namespace") not in (None, namespace) or labels.get("alertname") == "Watchdog":
            continue
        keys = {k: v for k, v in labels.items() if k in ("deployment", "pod", "service_name", "container", "reason")}
        lines.append(f"{labels.get('alertname')} {json.dumps(keys)} severity={labels.get('severity')} since "
                     f"{a.get('startsAt', '')}: {redact_text(a.get('annotations', {}).get('description', ''))[:200]}")
    return _bound_lines(lines, what="alerts") if lines else "no alerts firing"


def findings(cluster: Cluster, namespace: str, limit: int = 25) -> tuple[str, list[Any]]:
    """The analyzers' findings as compact evidence, most severe first."""
    _view, found = run_all(cluster, namespace)
    order = {"critical": 0, "warning": 1, "info": 2}
    found.sort(key=lambda f: (order.get(f.severity, 3), f.component or ""))
    lines = [f"[{f.severity}] {f.signal} @ {f.component}: {redact_text(f.summary)[:220]}" for f in found]
    return _bound_lines(lines, limit=limit, what="findings"), found


def pods_of(cluster: Cluster, namespace: str, component: str) -> list[str]:
    return [p["metadata"]["name"] for p in cluster.list("Pod", namespace) if p.get("kind") != "Omitted"
            and component_of_pod(p["metadata"]["name"]) == component]
