"""The hotel-reservation app deployed through the API for the kube end-to-end tests, in two waves.

Backends (databases, Consul, memcached) go first and their Endpoints must be seen by the twin kubelet
before the services start, so the services find them at start-up instead of crash-looping into back-off.
Each caller says how it sees a wave's Endpoints (the agent's mirror, or its telemetry in Prometheus).
"""

from __future__ import annotations

from collections.abc import Callable

from kube_controlplane import eventually
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

from stratus.twin.apps import load_app

APP = load_app("hotel-reservation")


def deploy_in_waves(admin: DynamicClient, ns: str, endpoints_seen: Callable[[list[str]], bool], where: str) -> None:
    """Create each wave's Services and Deployments, wait for the Deployments to be Available, then for
    ``endpoints_seen(wave)`` (described by ``where`` in a timeout's message)."""
    objs = {(o["kind"], o["metadata"]["name"]): o for o in APP.manifests(ns) if o["kind"] in ("Deployment", "Service")}
    apps = k8s.AppsV1Api(admin.client)
    backends = [c for c in APP.components if APP.kind_of(c) != "app"]
    for wave in (backends, APP.app_services()):
        for comp in wave:
            for kind in ("Service", "Deployment"):
                admin.resources.get(api_version=objs[kind, comp]["apiVersion"], kind=kind).create(
                    body=objs[kind, comp], namespace=ns)
        for comp in wave:
            eventually(lambda c=comp: (apps.read_namespaced_deployment(c, ns).status.available_replicas or 0) >= 1,
                       90, f"Deployment {ns}/{comp} Available")
        eventually(lambda w=wave: endpoints_seen(w), 30, f"the Endpoints of every service in {where}")
