"""What a transaction could have affected: the components its actions touch and the call graph around
them (``Scope`` for the TNR verdict), read through the Cluster protocol only.

Touched components come from the actions' targets: a workload or pod is its component, a Service the
workloads it selects, a NetworkPolicy the workloads its pod selector matches, a ConfigMap or Secret the
workloads that reference it, a database command the database's workload, a Chaos Mesh experiment the
workloads it selects. A Node, or a kind not listed, may affect anything; a change that only relaxes
admission reaches the pods it let start (``Scope.admitted``). The call graph joins the Deployments'
``*_ADDR`` environment with the client spans of recent traces.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.base import Cluster, ClusterError, epoch
from stratus.tools.analyzers.view import View
from stratus.tools.health import Scope, component_of_pod

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
TRACE_SAMPLE = 200


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _selected(view: View, selector: dict[str, str] | None) -> set[str] | None:
    """Workloads whose pod template carries ``selector`` (``None`` when the selector selects all)."""
    if not selector:
        return None
    return {d["metadata"]["name"] for d in view.deployments
            if _labels_match(selector, d["spec"]["template"].get("metadata", {}).get("labels", {}))}


def _referencing(view: View, kind: str, name: str) -> set[str]:
    """Workloads whose pod template mentions the ConfigMap or Secret ``name``."""
    key = "configMap" if kind == "ConfigMap" else "secret"
    out = set()
    for d in view.deployments:
        spec = d["spec"]["template"]["spec"]
        refs = [v.get(key, {}).get("name" if key == "configMap" else "secretName") for v in spec.get("volumes") or []]
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            refs += [(e.get(f"{key}Ref") or {}).get("name") for e in c.get("envFrom") or []]
            refs += [((e.get("valueFrom") or {}).get(f"{key}KeyRef") or {}).get("name") for e in c.get("env") or []]
        if name in refs:
            out.add(d["metadata"]["name"])
    return out


def _object(cluster: Cluster, action: Action, snapshot: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The object as it was before the change (from the undo log), else as it is now."""
    for m in snapshot:
        meta = m.get("metadata", {})
        if m.get("kind") == action.kind and meta.get("name") == action.name:
            return m
    try:
        return cluster.get(action.kind, action.name, action.namespace)
    except ClusterError:
        return None


ADMISSION = {"ResourceQuota", "LimitRange"}


def relaxes_admission(action: Action) -> bool:
    """Whether the action only lifts a constraint on where or whether new pods may start: a quota or a
    LimitRange deleted, a node uncordoned, taints only removed. Running pods never see such a change;
    the pods it reaches are those created after it and, for a node, those placed on it."""
    if action.kind in ADMISSION:
        return action.verb == "delete"
    if action.kind == "Node":
        return action.verb == "uncordon" or (action.verb == "taint" and not action.params.get("add"))
    return False


def _created_since(view: View, since: float) -> set[str]:
    """Components with a pod created at or after ``since`` (the pods an admission change could reach)."""
    return {view.deployment_of_pod(p) for p in view.pods
            if (epoch(p["metadata"].get("creationTimestamp")) or 0.0) >= since}


def touched_by(cluster: Cluster, view: View, action: Action, snapshot: list[dict[str, Any]],
               since: float | None = None) -> set[str] | None:
    """Components one action changes (``None``: it may affect any component). With ``since`` (when the
    transaction began), a change that only relaxes admission touches the components that started pods
    after it; without it, its reach is unknown."""
    if since is not None and relaxes_admission(action):
        reached = _created_since(view, since)
        if action.kind == "Node":
            reached |= {view.deployment_of_pod(p) for p in view.pods
                        if (p.get("spec") or {}).get("nodeName") == action.name}
        return reached
    if action.kind in WORKLOADS:
        return {action.name}
    if action.kind == "Pod":
        pod = next((p for p in view.pods if p["metadata"]["name"] == action.name), None)
        return {view.deployment_of_pod(pod) if pod else component_of_pod(action.name)}
    obj = _object(cluster, action, snapshot)
    if action.kind == "Service":
        sel = _selected(view, ((obj or {}).get("spec") or {}).get("selector"))
        return None if sel is None else sel | {action.name}
    if action.kind == "NetworkPolicy":
        pod_selector = ((obj or {}).get("spec") or {}).get("podSelector") or {}
        return _selected(view, pod_selector.get("matchLabels"))
    if action.kind in ("ConfigMap", "Secret"):
        return _referencing(view, action.kind, action.name) or None
    if action.kind.endswith("Chaos"):
        return _chaos_targets(view, obj)
    return None


def _chaos_targets(view: View, obj: dict[str, Any] | None) -> set[str] | None:
    """Workloads a Chaos Mesh experiment selects (its ``selector``, and a NetworkChaos's ``target``), or
    ``None`` when a selector reaches beyond the namespace or selects by anything but pod labels."""
    namespace = view.namespace
    spec = (obj or {}).get("spec") or {}
    out: set[str] = set()
    for sel in (spec.get("selector"), (spec.get("target") or {}).get("selector")):
        if sel is None:
            continue
        if set(sel) - {"namespaces", "labelSelectors"} or set(sel.get("namespaces") or [namespace]) != {namespace}:
            return None
        selected = _selected(view, sel.get("labelSelectors"))
        if selected is None:
            return None
        out |= selected
    return out or None


def call_graph(cluster: Cluster, view: View) -> dict[str, frozenset[str]]:
    """Component -> every component it calls, directly or through others."""
    direct: dict[str, set[str]] = defaultdict(set)
    for caller, callees in view.dependencies().items():
        direct[caller] |= callees
    for trace in cluster.traces(limit=TRACE_SAMPLE):
        for span in trace.get("spans", []):
            if span.get("kind") == "CLIENT" and span.get("peer"):
                direct[span["service"]].add(view.service_component(span["peer"]))
    closed: dict[str, frozenset[str]] = {}
    for start in list(direct):
        seen: set[str] = set()
        stack = list(direct[start])
        while stack:
            c = stack.pop()
            if c not in seen and c != start:
                seen.add(c)
                stack.extend(direct.get(c, ()))
        closed[start] = frozenset(seen)
    return closed


def scope_of(cluster: Cluster, namespace: str, actions: list[Action], snapshot: list[dict[str, Any]],
             since: float | None = None) -> Scope:
    """The ``Scope`` of a transaction: its touched components, those of them it only let start pods
    (``Scope.admitted``), and the namespace's call graph. ``since`` is when it began (see
    ``touched_by``)."""
    view = View.read(cluster, namespace)
    admitted: set[str] = set()
    changed: set[str] = set()
    everything = False  # an action whose reach is unknown (a Node, an unknown kind) touches everything
    for a in actions:
        t = touched_by(cluster, view, a, snapshot, since)
        if t is None:
            everything = True
            break
        (admitted if since is not None and relaxes_admission(a) else changed).update(t)
    return Scope(touched=None if everything else frozenset(admitted | changed), callees=call_graph(cluster, view),
                 admitted=frozenset(admitted - changed))
