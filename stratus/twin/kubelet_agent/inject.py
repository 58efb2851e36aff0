"""Faults on a real cluster with the twin's own injectors (``twin.faults``), applied through the API.

The injector runs on the mirror world as it would on the twin (same checks, same defaults, same
record); the mirror journals every create, update and delete it makes, and ``apply_changes`` replays
them with the official client: updates as replaces carrying the API's resourceVersion (a concurrent
change is a conflict, not a lost update), deletes with background propagation so the real garbage
collector removes dependents, pod deletions graceful so the agent stops their containers. Runtime
faults (database roles and users) change only the twin's databases, as the injector does.
"""

from __future__ import annotations

from typing import Any

from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from stratus.twin.faults import FaultError
from stratus.twin.kubelet_agent.nodes import REQUEST_TIMEOUT_S
from stratus.twin.mirror import Change

SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink")


def _clean(obj: dict[str, Any], op: str) -> dict[str, Any]:
    meta = {k: v for k, v in obj.get("metadata", {}).items()
            if k != "managedFields" and (op == "update" or k not in SERVER_SET)}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def apply_changes(dyn: DynamicClient, changes: list[Change]) -> list[str]:
    """Make ``changes`` on the API server in order; returns one line per change made."""
    done = []
    for op, obj in changes:
        kind, api_version, meta = obj["kind"], obj.get("apiVersion", "v1"), obj["metadata"]
        try:
            res = dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise FaultError(f"the fault needs kind {kind} ({api_version}), which this API server does not "
                             f"serve; install its CustomResourceDefinition (Chaos Mesh for chaos kinds) first") from None
        ns = meta.get("namespace")
        if op == "create":
            res.create(body=_clean(obj, op), namespace=ns, _request_timeout=REQUEST_TIMEOUT_S)
        elif op == "update":
            res.replace(body=_clean(obj, op), namespace=ns, _request_timeout=REQUEST_TIMEOUT_S)
        else:
            res.delete(name=meta["name"], namespace=ns, body={"propagationPolicy": "Background"},
                       _request_timeout=REQUEST_TIMEOUT_S)
        done.append(f"{op} {kind} {ns + '/' if ns else ''}{meta['name']}")
    return done
