"""The guard's policy limits (``data/policy.yaml``) and the pod-security walk that patch, apply and create
share: a document may not switch on privileged mode, host namespaces, hostPath or added capabilities.
"""

from __future__ import annotations

from typing import Any

from stratus.tools.kubectl.tables import POLICY


def _field_hit(key: str, value: Any, parent: str) -> str | None:
    if key in POLICY["forbidden_truthy_fields"] and value:
        return key
    if key in POLICY["forbidden_fields"] and value is not None:
        return key
    if key == "add" and parent == "capabilities" and value:
        return "capabilities.add"
    return None


def _walk_fields(value: Any, parent: str = "") -> str | None:
    """The name of a forbidden pod-security field set in value, if any."""
    if isinstance(value, dict):
        for k, v in value.items():
            hit = _field_hit(k, v, parent) or _walk_fields(v, k)
            if hit:
                return hit
    elif isinstance(value, list):
        for v in value:
            hit = _walk_fields(v, parent)
            if hit:
                return hit
    return None


def privilege_escalation(docs: list[tuple[str, Any]]) -> str | None:
    """The refusal for the first document (with the key of its parent object) that sets a forbidden field."""
    for parent, doc in docs:
        hit = _walk_fields(doc, parent)
        if hit:
            return f"setting {hit} is not allowed (privilege escalation); fix the workload without it"
    return None
