"""Manifests and one-line actions the KubeCluster tests share."""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.kube import KubeCluster


def deployment(name: str = "web", image: str = "nginx:1.27", replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": image}]}}}}


def service(name: str = "web", port: int = 80) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": port, "targetPort": 8080}]}}


def configmap(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}, "data": data}


def create(kube: KubeCluster, manifest: dict[str, Any]) -> None:
    res = kube.apply(Action(verb="create", kind=manifest["kind"], name=manifest["metadata"]["name"],
                            namespace=kube.namespace, params={"manifest": manifest}))
    assert res.ok, res.message


def act(kube: KubeCluster, verb: str, kind: str, name: str, dry_run: bool = False, **params: Any) -> Any:
    ns = None if kind == "Node" else kube.namespace
    return kube.apply(Action(verb=verb, kind=kind, name=name, namespace=ns, params=params), dry_run=dry_run)  # type: ignore[arg-type]
