"""Label selectors as the API server evaluates them, for every world and every reader of manifests.

Two shapes exist: a Service's (or a ReplicationController's) plain map, and the ``metav1.LabelSelector``
of workloads, NetworkPolicies and PDBs (``matchLabels`` plus ``matchExpressions``). The twin's
controllers and network model and the analyzers all select through these two functions, so they
cannot disagree on what selects what.
"""

from __future__ import annotations

from typing import Any


def matches(labels: dict[str, str] | None, selector: dict[str, str] | None) -> bool:
    """A plain map selector against ``labels``; an empty or missing one selects everything."""
    if not selector:
        return True
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def label_selector_matches(labels: dict[str, str] | None, selector: dict[str, Any] | None) -> bool:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions) against ``labels``. Empty selects all."""
    selector = selector or {}
    labels = labels or {}
    if not matches(labels, selector.get("matchLabels")):
        return False
    for expr in selector.get("matchExpressions", []) or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
