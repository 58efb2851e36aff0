"""Change analyzer: what changed shortly before the symptoms, on or near the failing components.

It reads the change journal the view carries (``View.journal``; nothing without one). A change is
evidence only when it is unsettled (its result was never seen healthy: a routine rollout, a scaling
or a config edit that stayed healthy is settled and ignored), happened within ``LOOKBACK_S`` before
the symptoms began (STRATUS's own changes come after them), and lines up with the symptoms:

- ``ChangeOnBrokenObject``: the changed object is itself broken now (its workload's pods fail or
  stay Pending, its Service has no endpoints, the new env value names no Service, a deleted
  ConfigMap's consumers fail, a node's new taint or cordon leaves pods Pending);
- ``ObjectDeletedBeforeSymptoms``: a deleted object whose consumers now fail;
- ``ChangeNearSymptoms`` (info): the object serves a component with symptoms, or one next to a broken one.

A change that lines up with nothing is not reported.
"""

from __future__ import annotations

from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.addresses import parse_address, service_of_host
from stratus.tools.analyzers.config_refs import template_refs
from stratus.tools.analyzers.match import pod_templates, selector_matches, workload_of_pod
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View
from stratus.tools.health import alert_component

LOOKBACK_S = 1800.0
"""How long before the symptoms a change still counts as "shortly before"."""
GRACE_S = 120.0
"""How long after the first unhealthy poll a change still counts (health lags the change it follows)."""
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


def broken_components(v: View) -> dict[str, str]:
    """Workloads whose own pods fail now (Pending, waiting, not Ready), with the first reason seen."""
    out: dict[str, str] = {}
    for p in v.pods:
        comp = workload_of_pod(v, p)
        st = p.get("status") or {}
        if st.get("phase") == "Pending" and not st.get("containerStatuses"):
            out.setdefault(comp, "pods Pending")
        for cs in st.get("containerStatuses") or []:
            reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            if reason or not cs.get("ready"):
                out.setdefault(comp, reason or "not Ready")
    for d in v.deployments:
        want = int((d.get("spec") or {}).get("replicas", 1) or 0)
        have = int((d.get("status") or {}).get("availableReplicas", 0) or 0)
        if want and have < want:
            out.setdefault(d["metadata"]["name"], f"{have}/{want} replicas available")
    return out


def _no_endpoints(v: View, service: str) -> bool:
    ep = v.endpoints.get(service)
    return ep is not None and not any(s.get("addresses") for s in ep.get("subsets") or [])


def _consumers(v: View, kind: str, name: str) -> list[str]:
    return sorted({owner for _k, owner, tmpl in pod_templates(v)
                   if any(rk == kind and rn == name for rk, rn, *_ in template_refs(tmpl))})


def _components(v: View, c: dict[str, Any], broken: dict[str, str]) -> list[str]:
    """The components a changed object serves or feeds."""
    kind, name, j = c["kind"], c["name"], v.journal
    if kind in WORKLOADS:
        return [name]
    if kind == "Service":
        m = j.last_healthy(kind, name, c["namespace"]) or {}
        sel = (m.get("spec") or {}).get("selector") or {}
        owners = sorted({owner for _k, owner, t in pod_templates(v)
                         if sel and selector_matches((t.get("metadata") or {}).get("labels"), sel)})
        return owners or [v.service_component(name)]
    if kind in ("ConfigMap", "Secret", "PersistentVolumeClaim", "ServiceAccount"):
        return _consumers(v, kind, name)
    if kind == "HorizontalPodAutoscaler":
        m = j.last_healthy(kind, name, c["namespace"]) or {}
        target = ((m.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
        return [target] if target else []
    if kind == "NetworkPolicy":
        m = j.last_healthy(kind, name, c["namespace"]) or {}
        sel = ((m.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}
        return sorted({owner for _k, owner, t in pod_templates(v)
                       if selector_matches((t.get("metadata") or {}).get("labels"), sel)})
    if kind == "Node":
        return sorted(comp for comp, why in broken.items() if why == "pods Pending")
    return sorted(broken)  # quotas and limit ranges: whatever cannot start now


def _bad_address(v: View, c: dict[str, Any]) -> bool:
    """Whether a changed env value names a host no Service serves, or a port it does not expose."""
    ports = {s["metadata"]["name"]: {int(p["port"]) for p in (s.get("spec") or {}).get("ports") or []}
             for s in v.services}
    for f in c["fields"]:
        if f["field"] != "env":
            continue
        parsed = parse_address(f["after"].strip('"'))
        if parsed is None:
            continue
        name, _certain = service_of_host(parsed[0], v.namespace)
        if name and (name not in ports or (parsed[1] is not None and ports[name] and parsed[1] not in ports[name])):
            return True
    return False


def _object_broken(v: View, c: dict[str, Any], comp: str, broken: dict[str, str]) -> bool:
    if c["kind"] == "Service":
        return c["op"] == "delete" or _no_endpoints(v, c["name"])
    if c["kind"] in WORKLOADS and _bad_address(v, c):
        return True
    return comp in broken


def _symptomatic(v: View, broken: dict[str, str]) -> set[str]:
    out = set(broken)
    for a in v.alerts:
        if a.get("labels", {}).get("alertname") not in (None, "Watchdog"):
            out.add(v.service_component(alert_component(a["labels"])))
    deps = v.dependencies()
    for comp, ds in deps.items():
        if ds & set(broken):
            out.add(comp)  # a client of a broken component
        if comp in broken:
            out |= ds
    return out


@analyzer("changes")
def changes(v: View) -> list[Finding]:
    j = v.journal
    if j is None:
        return []
    now = v.cluster.now()
    onset = j.onset()
    since, until = ((onset - LOOKBACK_S, onset + GRACE_S) if onset is not None else (now - LOOKBACK_S, now))
    broken = broken_components(v)
    near = _symptomatic(v, broken)
    out: list[Finding] = []
    for c in j.unsettled(since, until):
        if c["namespace"] not in (None, v.namespace):
            continue
        what = f"{c['kind']} {c['name']}"
        fields = ", ".join(f"{f['path']}: {f['before']} -> {f['after']}" for f in c["fields"][:3])
        when = f"{int(now - c['at'])}s ago"
        healthy_known = j.last_healthy(c["kind"], c["name"], c["namespace"]) is not None
        facts = dict(kind=c["kind"], name=c["name"], change=c["id"], op=c["op"], at=c["at"],
                     fields=c["fields"][:5], healthy_known=healthy_known)
        for comp in _components(v, c, broken):
            ref = f"journal:{c['id']}"
            if c["op"] == "delete" and comp in broken:
                out.append(finding("changes", f"{c['kind']}/{c['name']}", f"{what} was deleted {when}, shortly before "
                                   f"{comp} began to fail ({broken[comp]})", comp, "ObjectDeletedBeforeSymptoms",
                                   "critical", [ref], **facts))
            elif _object_broken(v, c, comp, broken):
                out.append(finding("changes", f"{c['kind']}/{c['name']}", f"{what} was {c['op']}d {when} ({fields}) "
                                   f"and is broken now ({broken.get(comp, 'no endpoints or unresolved address')})",
                                   comp, "ChangeOnBrokenObject", "warning", [ref], **facts))
            elif comp in near:
                out.append(finding("changes", f"{c['kind']}/{c['name']}", f"{what} was {c['op']}d {when} ({fields}), "
                                   f"next to components with symptoms", comp, "ChangeNearSymptoms", "info",
                                   [ref], **facts))
    return out
