"""Operator mistakes that starve workloads: scheduling and capacity, quotas and limit ranges, storage.

Same shape as ``faults_ops`` (registered into the fault registry by ``stratus.twin.faults``). The pods
that show the symptom are new ones: a drain, an eviction or a rollout makes the ReplicaSet create them,
and the scheduler, admission or the volume binder of the twin (``twin.admission``, ``twin.scheduling``)
refuses them for the reason a real control plane would give.
"""

from __future__ import annotations

from typing import Any

from stratus.twin.faults_ops import OpsFault, container, delete_pods, get, ops_fault, patch_deployment, recreate
from stratus.twin.world import World

CATALOGUE: list[OpsFault] = []


# --- scheduling and capacity ----------------------------------------------------------------------
@ops_fault(CATALOGUE, "request_too_large", "A memory request was raised beyond what any node can offer.",
           "any", "scheduling", params={"memory": "requested memory (default 64Gi)"}, defaults={"memory": "64Gi"},
           system_level="Virtualization", fault_type="Misconfiguration")
def _request(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    def change(d: dict[str, Any]) -> None:
        container(d).setdefault("resources", {}).setdefault("requests", {})["memory"] = str(params["memory"])
    before = patch_deployment(world, target, change)
    return {"original": {"requests": (before.get("resources") or {}).get("requests")}}


def _all_nodes(world: World, fn: Any) -> list[str]:
    names = []
    for node in world.store.list("Node"):
        n = get(world, "Node", node["metadata"]["name"])
        fn(n)
        world.store.update(n)
        names.append(n["metadata"]["name"])
    return names


@ops_fault(CATALOGUE, "node_taint", "Every node was tainted for maintenance, then the target's pods were drained.",
           "any", "scheduling", params={"key": "taint key (default maintenance)"}, defaults={"key": "maintenance"},
           system_level="Virtualization", fault_type="Operation Error")
def _taint(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    taint = {"key": str(params["key"]), "value": "planned", "effect": "NoSchedule"}
    nodes = _all_nodes(world, lambda n: n["spec"].setdefault("taints", []).append(dict(taint)))
    delete_pods(world, target)
    return {"taint": taint, "nodes": nodes}


@ops_fault(CATALOGUE, "node_cordon", "Every node was cordoned, then the target's pods were drained.",
           "any", "scheduling", system_level="Virtualization", fault_type="Operation Error")
def _cordon(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    nodes = _all_nodes(world, lambda n: n["spec"].update(unschedulable=True))
    delete_pods(world, target)
    return {"nodes": nodes}


@ops_fault(CATALOGUE, "affinity_to_nothing", "A required node affinity names a node label no node has.",
           "any", "scheduling", params={"label": "required label key=value (default disktype=nvme)"},
           defaults={"label": "disktype=nvme"}, system_level="Virtualization", fault_type="Dependency Problem")
def _affinity(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    key, _, value = str(params["label"]).partition("=")

    def change(d: dict[str, Any]) -> None:
        d["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}]}}}
    patch_deployment(world, target, change)
    return {"original": {"affinity": None}}


# --- quotas ---------------------------------------------------------------------------------------
@ops_fault(CATALOGUE, "resource_quota_exhausted",
           "A ResourceQuota on memory limits was added; pods without limits can no longer be created.",
           "any", "quotas", params={"name": "quota name (default compute-resources)"},
           defaults={"name": "compute-resources"}, system_level="Virtualization", fault_type="Misconfiguration")
def _quota(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    name = str(params["name"])
    world.store.create({"apiVersion": "v1", "kind": "ResourceQuota",
                        "metadata": {"name": name, "namespace": world.namespace},
                        "spec": {"hard": {"limits.memory": "4Gi", "limits.cpu": "16"}}})
    delete_pods(world, target)
    return {"quota": name}


@ops_fault(CATALOGUE, "limit_range_default_oom",
           "A LimitRange gives containers without a memory limit a default far below what they use.",
           "any", "quotas", params={"name": "LimitRange name (default mem-defaults)",
                                    "limit": "default memory limit (default 16Mi)"},
           defaults={"name": "mem-defaults", "limit": "16Mi"}, system_level="Virtualization",
           fault_type="Misconfiguration")
def _limit_range(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    name = str(params["name"])
    world.store.create({"apiVersion": "v1", "kind": "LimitRange",
                        "metadata": {"name": name, "namespace": world.namespace},
                        "spec": {"limits": [{"type": "Container", "default": {"memory": str(params["limit"])},
                                             "defaultRequest": {"memory": str(params["limit"])}}]}})
    delete_pods(world, target)
    return {"limitrange": name}


# --- storage --------------------------------------------------------------------------------------
STORAGE_CLASS = "standard"


def claim_name(target: str) -> str:
    return f"{target.removeprefix('mongodb-')}-pvc"


def _stage_volume(world: World, target: str, params: dict[str, Any]) -> None:
    """The database keeps its data on a PVC (``<svc>-pvc``) of the cluster's default StorageClass."""
    if not world.store.exists("StorageClass", STORAGE_CLASS):
        world.store.create({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                            "metadata": {"name": STORAGE_CLASS, "annotations": {
                                "storageclass.kubernetes.io/is-default-class": "true"}},
                            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
                            "volumeBindingMode": "Immediate"})
    world.store.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": claim_name(target), "namespace": world.namespace},
                        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": STORAGE_CLASS,
                                 "resources": {"requests": {"storage": "1Gi"}}}})

    def change(d: dict[str, Any]) -> None:
        spec = d["spec"]["template"]["spec"]
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name(target)}}]
        container(d)["volumeMounts"] = [{"name": "data", "mountPath": "/data/db"}]
    patch_deployment(world, target, change)


@ops_fault(CATALOGUE, "pvc_wrong_storage_class",
           "The database's PVC was re-created with a StorageClass the cluster does not have.",
           "database", "storage", params={"storage_class": "class named (default fast-ssd)"},
           defaults={"storage_class": "fast-ssd"}, system_level="Virtualization",
           fault_type="Network/Storage Issue", stage=_stage_volume)
def _pvc_class(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    pvc = get(world, "PersistentVolumeClaim", claim_name(target))
    delete_pods(world, target)
    world.store.delete("PersistentVolumeClaim", claim_name(target), world.namespace)
    spec = {k: v for k, v in pvc["spec"].items() if k != "volumeName"}
    fresh = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": claim_name(target), "namespace": world.namespace},
             "spec": {**spec, "storageClassName": str(params["storage_class"])}}
    recreate(world, fresh)
    return {"claim": claim_name(target), "original": {"storageClassName": pvc["spec"]["storageClassName"]}}


@ops_fault(CATALOGUE, "pvc_deleted", "The database's PVC was deleted while its pod was being restarted.",
           "database", "storage", system_level="Virtualization", fault_type="Network/Storage Issue",
           stage=_stage_volume)
def _pvc_deleted(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    pvc = get(world, "PersistentVolumeClaim", claim_name(target))
    delete_pods(world, target)
    world.store.delete("PersistentVolumeClaim", claim_name(target), world.namespace)
    return {"claim": claim_name(target), "original": {"spec": pvc["spec"]}}
