"""The guard's claim rule: a PersistentVolumeClaim that holds or may hold data is never deleted or
replaced; a Pending claim bound to no volume may be deleted, a gone one re-created."""

from __future__ import annotations

from typing import Any

import pytest

from stratus.cluster.actions import Action
from stratus.tools.kubectl import guard

NS = "shop"


def claim(phase: str | None = "Pending", volume: str | None = None, **annotations: str) -> dict[str, Any]:
    m: dict[str, Any] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": "data", "namespace": NS},
                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                                  "resources": {"requests": {"storage": "1Gi"}}}}
    if volume:
        m["spec"]["volumeName"] = volume
    if annotations:
        m["metadata"]["annotations"] = annotations
    if phase:
        m["status"] = {"phase": phase}
    return m


ABSENT = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": NS}, "absent": True}
DELETE = Action(verb="delete", kind="PersistentVolumeClaim", name="data", namespace=NS)


def _write(verb: str) -> Action:
    m = claim(None)
    return Action(verb=verb, kind="PersistentVolumeClaim", name="data", namespace=NS, params={"manifest": m})


@pytest.mark.parametrize("current, why", [
    (claim("Bound", "pvc-1"), "bound to volume pvc-1"),
    (claim(None, "pvc-1"), "bound to volume pvc-1"),  # a snapshot keeps no status: the volume name tells
    (claim("Lost"), "Lost"),
    (claim(None, **{"pv.kubernetes.io/bind-completed": "yes"}), "bind-completed"),
])
def test_a_claim_that_may_hold_data_is_never_deleted(current: dict[str, Any], why: str) -> None:
    v = guard(DELETE, allowed_namespaces={NS}, current=current)
    assert not v.allowed and "would lose its data" in v.reason and why in v.reason, v.reason


def test_a_claim_whose_state_is_unknown_is_never_deleted() -> None:
    v = guard(DELETE, allowed_namespaces={NS})
    assert not v.allowed and "state is unknown" in v.reason
    assert not guard("kubectl delete pvc data -n shop").allowed


def test_a_pending_claim_bound_to_no_volume_may_be_deleted_with_an_undo() -> None:
    v = guard(DELETE, allowed_namespaces={NS}, current=claim("Pending"))
    assert v.allowed and v.inverse_known, v.reason
    assert guard(DELETE, allowed_namespaces={NS}, current=claim(None)).allowed  # as a snapshot keeps it


def test_an_existing_claim_is_never_replaced_by_apply() -> None:
    for current in (claim("Bound", "pvc-1"), claim("Pending"), None):
        v = guard(_write("apply"), allowed_namespaces={NS}, current=current)
        assert not v.allowed and "would replace" in v.reason, v.reason
    assert guard(_write("apply"), allowed_namespaces={NS}, current=ABSENT).allowed


def test_a_claim_may_be_created_and_never_patched() -> None:
    # the API server refuses a create whose name exists, so a create never replaces a claim
    v = guard(_write("create"), allowed_namespaces={NS}, current=claim("Bound", "pvc-1"))
    assert v.allowed and v.inverse_known, v.reason
    v = guard("kubectl patch pvc data -n shop --type=merge -p '{\"spec\":{\"storageClassName\":\"x\"}}'")
    assert not v.allowed and "not allowed" in v.reason
