"""The guard's rule for PersistentVolumeClaims: a claim that holds or may hold data is never deleted or
replaced.

A plan may re-create a claim that is gone (its data went with it) and may delete a claim only when it
is Pending and bound to no volume (it never held data), to re-create it with a spec the cluster can
provision: a claim's spec is immutable, so that is the only way to fix its StorageClass. The rule reads
the claim as the transaction's snapshot found it (``current``); a claim whose state is unknown is
treated as bound. ``create`` needs no rule: the API server refuses a name that exists.
"""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action

BOUND_MARKS = ("pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller")
"""Annotations the PV controller leaves on a claim it has bound: such a claim held data, whatever its phase."""


def _bound_to(claim: dict[str, Any]) -> str | None:
    """Why a claim may hold data (its volume, its phase, its binding marks), or None when it never did."""
    spec, meta = claim.get("spec") or {}, claim.get("metadata") or {}
    if spec.get("volumeName"):
        return f"bound to volume {spec['volumeName']}"
    phase = (claim.get("status") or {}).get("phase")
    if phase not in (None, "Pending"):
        return f"{phase}"
    marks = [k for k in BOUND_MARKS if k in (meta.get("annotations") or {})]
    return f"marked {marks[0]}" if marks else None


def claim_problem(a: Action, current: dict[str, Any] | None) -> str | None:
    """Why the guard refuses a write to a PersistentVolumeClaim, or None when it is safe."""
    if a.kind != "PersistentVolumeClaim" or a.verb == "create":
        return None
    ref = f"PersistentVolumeClaim/{a.name}"
    absent = current is not None and bool(current.get("absent"))
    if a.verb == "delete":
        if current is None:
            return (f"deleting {ref}: its state is unknown; STRATUS deletes a claim only when it reads it Pending "
                    f"and bound to no volume (it never held data)")
        why = None if absent else _bound_to(current)
        if why:
            return (f"deleting {ref} would lose its data: it is {why} (no safe inverse); fix the pod or the volume "
                    f"binding instead")
        return None
    if a.verb == "apply" and not absent:
        return (f"applying {ref} would replace {'a claim whose state is unknown' if current is None else 'an existing claim'}"
                f" (its spec is immutable and it may hold data); only a claim that is gone may be re-created, with "
                f"`kubectl create -f -`")
    return None
