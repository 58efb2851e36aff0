"""The twin's admission, volume binding, node affinity and postStart hook, with the real components' words."""

from __future__ import annotations

import copy
from typing import Any

from stratus.twin.faults import inject, stage
from stratus.twin.world import World


def _events(world: World, reason: str) -> list[str]:
    return [e["message"] for e in world.store.events(world.namespace) if e["reason"] == reason]


def _pods(world: World, comp: str) -> list[dict[str, Any]]:
    return world.store.list("Pod", world.namespace, {world.app.label_key: comp})


def test_a_memory_limit_quota_refuses_pods_without_limits_and_names_itself() -> None:
    world = World(seed=1)
    inject(world, "resource_quota_exhausted", "search")
    world.advance(60)
    assert not _pods(world, "search")
    failed = _events(world, "FailedCreate")
    assert failed and "forbidden: failed quota: compute-resources: must specify limits.memory" in failed[0]
    quota = world.store.get("ResourceQuota", "compute-resources", world.namespace)
    assert quota["status"]["hard"]["limits.memory"] == "4Gi" and "limits.memory" in quota["status"]["used"]
    world.store.delete("ResourceQuota", "compute-resources", world.namespace)
    world.advance(60)
    assert _pods(world, "search") and all(p["spec"].get("nodeName") for p in _pods(world, "search"))


def test_a_limit_range_default_lands_on_new_pods_only() -> None:
    world = World(seed=1)
    untouched = _pods(world, "rate")[0]["metadata"]["name"]
    inject(world, "limit_range_default_oom", "geo")
    world.advance(60)
    geo = _pods(world, "geo")[0]
    assert geo["spec"]["containers"][0]["resources"]["limits"]["memory"] == "16Mi"
    assert "kubernetes.io/limit-ranger" in geo["metadata"]["annotations"]
    assert _pods(world, "rate")[0]["metadata"]["name"] == untouched
    assert "memory" not in _pods(world, "rate")[0]["spec"]["containers"][0]["resources"].get("limits", {})
    last = geo["status"]["containerStatuses"][0].get("lastState", {}).get("terminated", {})
    assert last.get("reason") == "OOMKilled"


def test_claims_bind_to_existing_classes_and_pods_wait_for_them() -> None:
    world = World(seed=2)
    stage(world, "pvc_wrong_storage_class", "mongodb-user")
    world.advance(60)
    pvc = world.store.get("PersistentVolumeClaim", "user-pvc", world.namespace)
    assert pvc["status"]["phase"] == "Bound" and world.store.exists("PersistentVolume", pvc["spec"]["volumeName"])
    inject(world, "pvc_wrong_storage_class", "mongodb-user")
    world.advance(60)
    assert world.store.get("PersistentVolumeClaim", "user-pvc", world.namespace)["status"]["phase"] == "Pending"
    assert any('storageclass.storage.k8s.io "fast-ssd" not found' in m for m in _events(world, "ProvisioningFailed"))
    pod = _pods(world, "mongodb-user")[0]
    assert not pod["spec"].get("nodeName")
    assert "pod has unbound immediate PersistentVolumeClaims" in pod["status"]["conditions"][0]["message"]


def test_a_missing_claim_is_named_by_the_scheduler() -> None:
    world = World(seed=2)
    stage(world, "pvc_deleted", "mongodb-rate")
    world.advance(30)
    inject(world, "pvc_deleted", "mongodb-rate")
    world.advance(30)
    msg = _pods(world, "mongodb-rate")[0]["status"]["conditions"][0]["message"]
    assert msg.startswith('0/3 nodes are available: persistentvolumeclaim "rate-pvc" not found.')


def test_required_node_affinity_is_a_scheduling_filter() -> None:
    world = World(seed=3)
    inject(world, "affinity_to_nothing", "user")
    world.advance(30)
    pending = [p for p in _pods(world, "user") if not p["spec"].get("nodeName")]
    assert pending and "3 node(s) didn't match Pod's node affinity/selector" in \
        pending[0]["status"]["conditions"][0]["message"]
    node = copy.deepcopy(world.store.get("Node", "kind-worker2"))
    node["metadata"]["labels"]["disktype"] = "nvme"
    world.store.update(node)
    world.advance(30)
    assert all(p["spec"].get("nodeName") == "kind-worker2" for p in _pods(world, "user"))


def test_a_post_start_hook_the_image_lacks_kills_the_container() -> None:
    world = World(seed=4)
    inject(world, "poststart_hook_failure", "profile")
    world.advance(90)
    hooks = _events(world, "FailedPostStartHook")
    assert hooks and 'exec: "/opt/hooks/warm-cache.sh": stat /opt/hooks/warm-cache.sh: no such file' in hooks[0]
    new = [p for p in _pods(world, "profile") if p["spec"]["containers"][0].get("lifecycle")]
    assert new and new[0]["status"]["containerStatuses"][0]["restartCount"] >= 1
