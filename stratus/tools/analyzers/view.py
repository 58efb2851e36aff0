"""``View``: one consistent read of a namespace that every analyzer of a diagnosis round shares.

Besides the objects it holds the topology helpers the analyzers and runbooks need (which Deployment
owns a pod, which component serves a DNS name, the dependency graph from ``*_ADDR`` env).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from stratus.cluster.base import Cluster, ClusterError
from stratus.cluster.kinds import KINDS
from stratus.tools.health import component_of_pod

LIST_LIMIT = 500
"""Objects of one kind the reference analyzers read per diagnosis round (the protocol adds an Omitted marker)."""


@dataclass
class View:
    """One consistent read of a namespace, shared by the analyzers of a diagnosis round."""

    cluster: Cluster
    namespace: str
    deployments: list[dict[str, Any]] = field(default_factory=list)
    replicasets: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    listed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    """Kinds the reference analyzers could not list, with the backend's reason (e.g. RBAC refuses Secrets)."""
    truncated: set[str] = field(default_factory=set)
    """Kinds with more objects than ``LIST_LIMIT``: a name missing from them proves nothing."""
    journal: Any = None
    """The change journal (``stratus.tools.journal.ChangeJournal``) when STRATUS has been watching."""

    @classmethod
    def read(cls, cluster: Cluster, namespace: str, journal: Any = None) -> "View":
        v = cls(cluster, namespace, journal=journal)

        def real(kind: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if any(i.get("kind") == "Omitted" for i in items):
                v.truncated.add(kind)
            return [i for i in items if i.get("kind") != "Omitted"]
        v.deployments = real("Deployment", cluster.list("Deployment", namespace))
        v.replicasets = real("ReplicaSet", cluster.list("ReplicaSet", namespace))
        v.pods = real("Pod", cluster.list("Pod", namespace))
        v.services = real("Service", cluster.list("Service", namespace))
        v.endpoints = {e["metadata"]["name"]: e for e in real("Endpoints", cluster.list("Endpoints", namespace))}
        v.nodes = real("Node", cluster.list("Node"))
        v.events = real("Event", cluster.events(namespace, since=cluster.now() - 900))
        v.alerts = [a for a in cluster.alerts() if a.get("labels", {}).get("namespace") in (None, namespace)]
        return v

    def objects(self, kind: str, names_only: bool = False) -> list[dict[str, Any]]:
        """Up to ``LIST_LIMIT`` objects of ``kind`` in the namespace (cluster-wide if cluster-scoped), read once.

        A kind the backend refuses or does not serve reads as empty and is recorded in ``unreadable``.
        ``names_only`` keeps nothing but kind and name (how Secrets are held: their data is never kept).
        """
        if kind not in self.listed:
            ns = self.namespace if KINDS.get(kind, {}).get("namespaced", True) else None
            try:
                items = self.cluster.list(kind, ns, limit=LIST_LIMIT)
            except ClusterError as exc:
                self.unreadable[kind] = str(exc)
                items = []
            if any(i.get("kind") == "Omitted" for i in items):
                self.truncated.add(kind)
            kept = [i for i in items if i.get("kind") != "Omitted"]
            if names_only:
                kept = [{"kind": kind, "metadata": {"name": i["metadata"]["name"]}} for i in kept]
            self.listed[kind] = kept
        return self.listed[kind]

    # --- topology ---------------------------------------------------------------------------
    def deployment_of_pod(self, pod: dict[str, Any]) -> str:
        for ref in pod["metadata"].get("ownerReferences", []):
            if ref.get("kind") == "ReplicaSet":
                rs = next((r for r in self.replicasets if r["metadata"]["name"] == ref["name"]), None)
                if rs:
                    for r2 in rs["metadata"].get("ownerReferences", []):
                        if r2.get("kind") == "Deployment":
                            return r2["name"]
                return component_of_pod(pod["metadata"]["name"])
        return pod["metadata"]["name"]

    def service_component(self, host: str) -> str:
        """The component behind a DNS name (Service name -> Deployment with matching labels)."""
        name = host.split(".")[0]
        svc = next((s for s in self.services if s["metadata"]["name"] == name), None)
        if svc is None:
            return name
        sel = svc["spec"].get("selector") or {}
        for d in self.deployments:
            labels = d["spec"]["template"].get("metadata", {}).get("labels", {})
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                return d["metadata"]["name"]
        return name

    def dependencies(self) -> dict[str, set[str]]:
        """Call/dependency graph read from the Deployments' env (``*_ADDR``) and from traces."""
        graph: dict[str, set[str]] = defaultdict(set)
        for d in self.deployments:
            for c in d["spec"]["template"]["spec"].get("containers", []):
                for e in c.get("env") or []:
                    val = str(e.get("value", ""))
                    if e["name"].endswith("_ADDR") and ":" in val:
                        graph[d["metadata"]["name"]].add(self.service_component(val.rpartition(":")[0]))
        return graph

    def template_of(self, deployment: str) -> dict[str, Any] | None:
        d = next((x for x in self.deployments if x["metadata"]["name"] == deployment), None)
        return d["spec"]["template"] if d else None

    def container_env(self, deployment: str) -> dict[str, str]:
        t = self.template_of(deployment)
        if not t:
            return {}
        return {e["name"]: str(e.get("value", "")) for c in t["spec"].get("containers", [])
                for e in c.get("env") or []}
