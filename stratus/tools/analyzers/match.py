"""Shared reading helpers for the reference analyzers: label selectors, pod templates, container ports.

Kubernetes selects with two selector shapes (a Service's plain map, a workload's ``matchLabels`` plus
``matchExpressions``) and names ports in two ways (a number or a container port's name); these helpers
resolve both the way the API server and kube-proxy do, so every analyzer agrees on what selects what.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stratus.cluster.selectors import label_selector_matches
from stratus.tools.analyzers.view import View

Manifest = dict[str, Any]


def selector_matches(labels: dict[str, str] | None, selector: dict[str, Any] | None) -> bool:
    """Whether ``labels`` satisfy a label selector; a plain map is treated as ``matchLabels``.

    An empty selector matches everything (a NetworkPolicy's or PDB's ``{}``); ``None`` matches nothing.
    """
    if selector is None:
        return False
    labels = labels or {}
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    return label_selector_matches(labels, selector)


def pod_templates(v: View) -> Iterator[tuple[str, str, Manifest]]:
    """Every pod spec the namespace will run: ``(kind, name, template)`` for workloads and CronJobs.

    ReplicaSets owned by a Deployment are skipped (their Deployment stands for them), and so are Jobs
    owned by a CronJob, so a broken reference is reported once, on the object a person edits.
    """
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        items = v.deployments if kind == "Deployment" else v.objects(kind)
        for obj in items:
            owners = {r.get("kind") for r in obj["metadata"].get("ownerReferences") or []}
            if owners & {"Deployment", "CronJob"}:
                continue
            tmpl = (obj.get("spec") or {}).get("template")
            if tmpl:
                yield kind, obj["metadata"]["name"], tmpl
    for cj in v.objects("CronJob"):
        tmpl = (((cj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template")
        if tmpl:
            yield "CronJob", cj["metadata"]["name"], tmpl


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Init and app containers of a pod spec."""
    return list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])


def exposed_ports(pod_spec: dict[str, Any]) -> tuple[set[int], dict[str, int]]:
    """Container port numbers a pod spec declares, and its named ports (name -> number)."""
    numbers: set[int] = set()
    named: dict[str, int] = {}
    for c in pod_spec.get("containers") or []:
        for p in c.get("ports") or []:
            if "containerPort" in p:
                numbers.add(int(p["containerPort"]))
                if p.get("name"):
                    named[str(p["name"])] = int(p["containerPort"])
    return numbers, named


def resolve_port(port: Any, numbers: set[int], named: dict[str, int]) -> int | None:
    """The container port a Service targetPort or probe port means, or None when no container exposes it."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port) if int(port) in numbers else None
    return named.get(str(port))


def workload_of_pod(v: View, pod: Manifest) -> str:
    """The name of the controller a pod belongs to (its Deployment through the ReplicaSet, else its owner)."""
    refs = pod["metadata"].get("ownerReferences") or []
    if any(r.get("kind") == "ReplicaSet" for r in refs):
        return v.deployment_of_pod(pod)
    return str(refs[0]["name"]) if refs else str(pod["metadata"]["name"])
