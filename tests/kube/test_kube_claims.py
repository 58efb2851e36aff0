"""The claim plans against the real API server: a Pending claim bound to no volume is deleted and
re-created with another spec in one transaction, and TNR puts the old claim back; a Bound-looking
claim is refused by the guard."""

from __future__ import annotations

from typing import Any

from kube_controlplane import eventually
from kube_manifests import create

from stratus.cluster.actions import Action
from stratus.cluster.kube import KubeCluster
from stratus.tools import transaction as txn


def claim(ns: str, storage_class: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": "1Gi"}}}}


def test_a_pending_claim_is_recreated_and_tnr_puts_it_back(kube: KubeCluster) -> None:
    ns = kube.namespace
    create(kube, claim(ns, "missing-class"))
    actions = [Action(verb="delete", kind="PersistentVolumeClaim", name="data", namespace=ns),
               Action(verb="create", kind="PersistentVolumeClaim", name="data", namespace=ns,
                      params={"manifest": claim(ns, "other-class")})]
    tx = txn.begin(kube, "t1", 1, ns, actions, None, "test", 600)
    tx = txn.snapshot_and_guard(kube, tx, {ns})
    assert tx.status == "snapshotted", tx.verdict_reason
    tx = txn.apply_all(kube, tx)
    assert all(r["ok"] for r in tx.results), tx.results
    assert kube.get("PersistentVolumeClaim", "data")["spec"]["storageClassName"] == "other-class"
    assert txn.undo(kube, tx) == []
    assert kube.get("PersistentVolumeClaim", "data")["spec"]["storageClassName"] == "missing-class"


def test_a_bound_claim_is_refused_before_any_change(kube: KubeCluster) -> None:
    ns = kube.namespace
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-pv"},
          "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                   "nfs": {"server": "10.0.0.1", "path": "/x"}}}
    create(kube, pv)
    bound = claim(ns, "manual")
    bound["spec"]["volumeName"] = f"{ns}-pv"
    create(kube, bound)
    eventually(lambda: (kube.get("PersistentVolumeClaim", "data").get("status") or {}).get("phase") == "Bound",
               30, "the claim bound to its volume")
    tx = txn.begin(kube, "t1", 1, ns, [Action(verb="delete", kind="PersistentVolumeClaim", name="data",
                                               namespace=ns)], None, "test", 600)
    tx = txn.snapshot_and_guard(kube, tx, {ns})
    assert tx.status == "refused" and f"bound to volume {ns}-pv" in tx.verdict_reason, tx.verdict_reason
    assert kube.get("PersistentVolumeClaim", "data")["status"]["phase"] == "Bound"
    kube.api.call("DELETE", "PersistentVolume", f"{ns}-pv", None)
