"""Helpers for analyzer tests: a HotelReservation twin whose manifests a test edits the way a person
would (patch a Deployment, add a ConfigMap, delete a Service), then one analyzer run over it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from stratus.cluster.base import ClusterError
from stratus.state import Finding
from stratus.tools.analyzers import REGISTRY, View
from stratus.twin.cluster import TwinCluster

Manifest = dict[str, Any]


def twin() -> TwinCluster:
    return TwinCluster(seed=0)


def edit(c: TwinCluster, kind: str, name: str, change: Callable[[Manifest], None]) -> Manifest:
    """Apply ``change`` to a stored object and write it back."""
    obj = copy.deepcopy(c.world.store.get(kind, name, c.namespace))
    change(obj)
    return c.world.store.update(obj)


def add(c: TwinCluster, kind: str, name: str, **body: Any) -> Manifest:
    """Create a namespaced object ``kind/name`` with ``body`` as its top-level fields."""
    api = {"ConfigMap": "v1", "Secret": "v1", "ServiceAccount": "v1", "PersistentVolumeClaim": "v1"}
    return c.world.store.create({"apiVersion": api.get(kind, "v1"), "kind": kind,
                                 "metadata": {"name": name, "namespace": c.namespace,
                                              **body.pop("metadata", {})}, **body})


def run(c: TwinCluster, name: str) -> list[Finding]:
    return REGISTRY[name](View.read(c, c.namespace))


def signals(found: list[Finding]) -> list[tuple[str, str | None]]:
    return sorted((f.signal, f.component) for f in found)


def pod_spec(c: TwinCluster, deployment: str) -> Manifest:
    return c.world.store.get("Deployment", deployment, c.namespace)["spec"]["template"]["spec"]


class NoSecrets(TwinCluster):
    """A twin whose backend refuses to list Secrets, as the shipped RBAC makes a real cluster do."""

    def list(self, kind: str, namespace: str | None = None, selector: dict[str, str] | None = None,
             limit: int = 200) -> list[Manifest]:
        if kind == "Secret":
            raise ClusterError("forbidden: missing permission `list` on secrets in namespace "
                               f"{namespace}; grant it with a Role/ClusterRole")
        return super().list(kind, namespace, selector, limit)


class FewServices(TwinCluster):
    """A twin whose Service list stops after two objects, as a large namespace's list does at the limit."""

    def list(self, kind: str, namespace: str | None = None, selector: dict[str, str] | None = None,
             limit: int = 200) -> list[Manifest]:
        return super().list(kind, namespace, selector, 2 if kind == "Service" else limit)
