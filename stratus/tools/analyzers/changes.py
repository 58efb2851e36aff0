"""Change analyzer: what changed shortly before the symptoms, on or near the failing components.

It reads the change journal the view carries (``View.journal``; nothing without one). A change is
evidence only when it is unsettled (its result was never seen healthy: a routine rollout, a scaling
or a config edit that stayed healthy is settled and ignored), happened within ``LOOKBACK_S`` before
the symptoms began (STRATUS's own changes come after them), and lines up with the symptoms:

- ``ChangeBrokeReference``: the change is what a reference now fails on (a Service dropped a port its
  clients name or a targetPort its pods open; a ConfigMap value now names a missing Service or port):
  the changed side is the one to put back, not the unchanged side to adapt;
- ``ChangeOnBrokenObject``: the changed object is itself broken now (its workload's pods fail or
  stay Pending, its Service has no endpoints, the new env value names no Service, a deleted
  ConfigMap's consumers fail, a node's new taint or cordon leaves pods Pending);
- ``ObjectDeletedBeforeSymptoms``: a deleted object whose consumers now fail;
- ``ChangeNearSymptoms`` (info): the object serves a component with symptoms, or one next to a broken one.

Each finding's ``link`` fact says which of these ties the change to the symptoms (``deleted``,
``broke_reference``, ``broken``, ``near``), so a plan can tell a change that broke something from one
that merely sits next to it.

A change that lines up with nothing is not reported, nor is a rollout restart (it changes no configuration)
or a scale-up whose old replicas still serve. A workload whose pods are OOM-killed under a LimitRange's
default limit is not broken by a change of its image tag alone (that rollout only made new pods, and
they were admitted under the default): the change is next to the symptoms, no more. A deletion the journal already saw "healthy" still counts
while the object is gone and what it served fails now: health lags a deletion.
"""

from __future__ import annotations

import json
from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.addresses import named_ports, parse_address, service_of_host
from stratus.tools.analyzers.admission import policed as policed_workloads
from stratus.tools.analyzers.config_refs import template_refs
from stratus.tools.analyzers.match import exposed_ports, pod_templates, resolve_port, selector_matches, workload_of_pod
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View
from stratus.tools.health import alert_component

LOOKBACK_S = 1800.0
"""How long before the symptoms a change still counts as "shortly before"."""
GRACE_S = 120.0
"""How long after the first unhealthy poll a change still counts (health lags the change it follows)."""
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REFERENCED = ("ConfigMap", "Secret", "PersistentVolumeClaim", "ServiceAccount")
"""Kinds pod templates name: their consumers are known, so a deletion lines up with those failing."""


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
    if kind in REFERENCED:
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
    """Whether a changed env or ConfigMap value names a host no Service serves, or a port it does not expose."""
    ports = {s["metadata"]["name"]: {int(p["port"]) for p in (s.get("spec") or {}).get("ports") or []}
             for s in v.services}
    for f in c["fields"]:
        if f["field"] not in ("env", "data"):
            continue
        parsed = parse_address(f["after"].strip('"'))
        if parsed is None or parsed[1] is None:
            continue  # a bare word (a log level, a mode) is no address
        name, _certain = service_of_host(parsed[0], v.namespace)
        if name and (name not in ports or (parsed[1] is not None and ports[name] and parsed[1] not in ports[name])):
            return True
    return False


def _service_broke_reference(v: View, c: dict[str, Any]) -> bool:
    """Whether a changed Service stopped serving what worked while healthy: a port its clients name is
    gone, or a targetPort the selected pods open became one they do not."""
    healthy = v.journal.last_healthy("Service", c["name"], c["namespace"]) if v.journal else None
    cur = next((s for s in v.services if s["metadata"]["name"] == c["name"]), None)
    if c["kind"] != "Service" or healthy is None or cur is None:
        return False
    old, new = ((m.get("spec") or {}).get("ports") or [] for m in (healthy, cur))
    gone = {int(p["port"]) for p in old} - {int(p["port"]) for p in new}
    if gone & named_ports(v).get(c["name"], set()):
        return True
    sel = (cur.get("spec") or {}).get("selector") or {}
    specs = [t.get("spec") or {} for _k, _o, t in pod_templates(v)
             if sel and selector_matches((t.get("metadata") or {}).get("labels"), sel)]

    def served(ports: list[dict[str, Any]]) -> bool:
        return all(resolve_port(p.get("targetPort", p.get("port")), *exposed_ports(s)) is not None
                   for p in ports for s in specs if exposed_ports(s)[0])
    return bool(specs) and served(old) and not served(new)


def _breaks_reference(v: View, c: dict[str, Any]) -> bool:
    """Whether the change itself is what a reference now fails on (the side that changed, not the
    unchanged side that still points where it always did)."""
    if c["op"] != "update":
        return False
    # a workload's own env edit is the client side itself: ChangeOnBrokenObject and the env runbooks
    # already put that value back, and say it was the application's setting that broke
    return _service_broke_reference(v, c) or (c["kind"] == "ConfigMap" and _bad_address(v, c))


def _restart_only(c: dict[str, Any]) -> bool:
    """A rollout restart (only the restartedAt annotation moved): it changes no configuration."""
    def rest(text: str) -> Any:
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if value is None:
            return {}
        return {k: x for k, x in value.items() if k != RESTARTED_AT} if isinstance(value, dict) else value
    return bool(c["fields"]) and all(f["field"] == "restartedAt" and rest(f["before"]) == rest(f["after"])
                                     for f in c["fields"])


def _scaled_up_serving(v: View, c: dict[str, Any]) -> bool:
    """A scale-up whose old replica count is still available: the new pods are on their way, nothing broke."""
    if c["kind"] not in WORKLOADS or not c["fields"] or any(f["field"] != "replicas" for f in c["fields"]):
        return False
    try:
        before, after = int(c["fields"][0]["before"]), int(c["fields"][0]["after"])
    except ValueError:
        return False
    d = next((x for x in v.deployments if x["metadata"]["name"] == c["name"]), None)
    have = int(((d or {}).get("status") or {}).get("availableReplicas", 0) or 0)
    return after > before and have >= before


def _scaled_down_unserved(v: View, c: dict[str, Any]) -> bool:
    """A scale-down that left a Service selecting the workload's pods with no endpoints."""
    f = next((f for f in c["fields"] if f["field"] == "replicas"), None)
    if c["kind"] not in WORKLOADS or f is None:
        return False
    try:
        if int(f["after"]) >= int(f["before"]):
            return False
    except ValueError:
        return False
    tmpl = v.template_of(c["name"]) or {}
    labels = (tmpl.get("metadata") or {}).get("labels") or {}
    return any(labels and (s.get("spec") or {}).get("selector") and _no_endpoints(v, s["metadata"]["name"])
               and selector_matches(labels, s["spec"]["selector"]) for s in v.services)


def _deleted_workload_breaks(v: View, c: dict[str, Any]) -> str:
    """For a deleted workload: the first Service that selected its pods and has no endpoints now."""
    if c["op"] != "delete" or c["kind"] not in WORKLOADS or v.journal is None:
        return ""
    m = v.journal.last_healthy(c["kind"], c["name"], c["namespace"]) or {}
    labels = (((m.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    for s in v.services:
        sel = (s.get("spec") or {}).get("selector")
        if sel and labels and selector_matches(labels, sel) and _no_endpoints(v, s["metadata"]["name"]):
            return f"Service {s['metadata']['name']} has no endpoints"
    return ""


def _object_broken(v: View, c: dict[str, Any], comp: str, broken: dict[str, str], policed: set[str]) -> bool:
    if _scaled_up_serving(v, c):
        return False
    if _scaled_down_unserved(v, c):
        return True
    if c["kind"] in WORKLOADS and comp in policed and c["fields"] and all(f["field"] == "image" for f in c["fields"]):
        return False  # its pods die under a LimitRange default: a new image tag only made new pods that got it
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
    policed = policed_workloads(v)
    out: list[Finding] = []
    for c in j.unsettled(since, until, absent_deletes=True):
        if c["namespace"] not in (None, v.namespace) or _restart_only(c):
            continue
        if c["settled"] and not _deleted_workload_breaks(v, c) and not (c["kind"] in REFERENCED and any(
                comp in broken for comp in _components(v, c, broken))):
            continue  # a settled deletion counts only when what it served (by name) fails now
        what = f"{c['kind']} {c['name']}"
        fields = ", ".join(f"{f['path']}: {f['before']} -> {f['after']}" for f in c["fields"][:3])
        when = f"{int(now - c['at'])}s ago"
        healthy_known = j.last_healthy(c["kind"], c["name"], c["namespace"]) is not None
        facts = dict(kind=c["kind"], name=c["name"], change=c["id"], op=c["op"], at=c["at"],
                     fields=c["fields"][:5], healthy_known=healthy_known)
        lost = _deleted_workload_breaks(v, c)
        breaks = _breaks_reference(v, c)
        for comp in _components(v, c, broken):
            ref = f"journal:{c['id']}"
            if c["op"] == "delete" and (comp in broken or lost):
                out.append(finding("changes", f"{c['kind']}/{c['name']}", f"{what} was deleted {when}, shortly before "
                                   f"{comp} began to fail ({broken.get(comp) or lost})", comp,
                                   "ObjectDeletedBeforeSymptoms", "critical", [ref], link="deleted", **facts))
            elif breaks:
                out.append(finding("changes", f"{c['kind']}/{c['name']}", f"{what} was updated {when} ({fields}) and "
                                   f"a reference that worked while healthy fails on what it changed", comp,
                                   "ChangeBrokeReference", "critical", [ref], link="broke_reference", **facts))
            elif _object_broken(v, c, comp, broken, policed):
                out.append(finding("changes", f"{c['kind']}/{c['name']}", f"{what} was {c['op']}d {when} ({fields}) "
                                   f"and is broken now ({broken.get(comp, 'no endpoints or unresolved address')})",
                                   comp, "ChangeOnBrokenObject", "warning", [ref], link="broken", **facts))
            elif comp in near:
                out.append(finding("changes", f"{c['kind']}/{c['name']}", f"{what} was {c['op']}d {when} ({fields}), "
                                   f"next to components with symptoms", comp, "ChangeNearSymptoms", "info",
                                   [ref], link="near", **facts))
    return out
