"""Admission and volume binding in the twin: LimitRange defaults, ResourceQuota, PVC provisioning,
node affinity and the postStart hook, with the messages the real components write.

- ``admit(world, pod)``: what the API server's LimitRanger and ResourceQuota admission plugins do to a
  pod the ReplicaSet controller creates (defaults filled in, or a Forbidden error naming the quota).
- ``bind_claims(world)``: the PV controller with a dynamic provisioner: a claim of an existing
  StorageClass is bound to a new volume; one of a missing class stays Pending (ProvisioningFailed).
- ``volume_unfit(world, pod)``: the scheduler's VolumeBinding filter (missing or unbound claims).
- ``affinity_fits(pod, node)``: required node affinity (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``).
- ``post_start_error(world, container)``: an exec postStart hook whose executable the image lacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stratus.twin.runtime import parse_quantity

if TYPE_CHECKING:
    from stratus.twin.world import World

RESOURCES = ("limits.memory", "limits.cpu", "requests.memory", "requests.cpu")
EVENT_EVERY_S = 60.0
HOOK_BINARIES = ("true", "/bin/true", "/bin/sh", "sh")


def _fmt(q: float, resource: str) -> str:
    if resource.endswith("memory"):
        return f"{int(q / 1024**2)}Mi"
    return f"{int(q * 1000)}m"


def _container_total(pod: dict[str, Any], resource: str) -> float | None:
    """Sum over containers of e.g. ``limits.memory``; None when a container does not set it."""
    section, _, res = resource.partition(".")
    total = 0.0
    for c in pod["spec"]["containers"]:
        q = parse_quantity(((c.get("resources") or {}).get(section) or {}).get(res))
        if q is None:
            return None
        total += q
    return total


def apply_limit_ranges(world: World, pod: dict[str, Any]) -> None:
    for lr in world.store.list("LimitRange", pod["metadata"]["namespace"]):
        for item in lr["spec"].get("limits") or []:
            if item.get("type") != "Container":
                continue
            for c in pod["spec"]["containers"]:
                res = c.setdefault("resources", {})
                for section, key in (("limits", "default"), ("requests", "defaultRequest")):
                    for name, value in (item.get(key) or {}).items():
                        res.setdefault(section, {}).setdefault(name, value)
        notes = pod["metadata"].setdefault("annotations", {})
        notes["kubernetes.io/limit-ranger"] = (f"LimitRanger plugin set: memory request for container "
                                               f"{pod['spec']['containers'][0]['name']}; memory limit for "
                                               f"container {pod['spec']['containers'][0]['name']}")


def quota_error(world: World, pod: dict[str, Any]) -> str | None:
    ns = pod["metadata"]["namespace"]
    name = pod["metadata"].get("name") or pod["metadata"].get("generateName", "")
    for quota in world.store.list("ResourceQuota", ns):
        hard = quota["spec"].get("hard") or {}
        missing = [r for r in RESOURCES if r in hard and _container_total(pod, r) is None]
        if missing:
            return (f'pods "{name}" is forbidden: failed quota: {quota["metadata"]["name"]}: must specify '
                    + ",".join(sorted(missing)))
        for r in (r for r in RESOURCES if r in hard):
            used = sum(_container_total(p, r) or 0.0 for p in world.store.list("Pod", ns))
            want, limit = _container_total(pod, r) or 0.0, parse_quantity(hard[r]) or 0.0
            if used + want > limit:
                qn = quota["metadata"]["name"]
                return (f'pods "{name}" is forbidden: exceeded quota: {qn}, requested: {r}={_fmt(want, r)}, '
                        f"used: {r}={_fmt(used, r)}, limited: {r}={hard[r]}")
    return None


def admit(world: World, pod: dict[str, Any]) -> str | None:
    """Mutate ``pod`` as LimitRanger does, then check ResourceQuota; the Forbidden message, or None."""
    apply_limit_ranges(world, pod)
    return quota_error(world, pod)


def quota_status(world: World) -> None:
    """Write each ResourceQuota's ``status.hard`` and ``status.used`` (the quota controller's job)."""
    for quota in world.store.list("ResourceQuota"):
        hard = quota["spec"].get("hard") or {}
        pods = world.store.list("Pod", quota["metadata"]["namespace"])
        used = {r: _fmt(sum(_container_total(p, r) or 0.0 for p in pods), r) for r in hard if r in RESOURCES}
        if "pods" in hard:
            used["pods"] = str(len(pods))
        quota["status"] = {"hard": dict(hard), "used": used}


# --- volumes --------------------------------------------------------------------------------------
def bind_claims(world: World) -> None:
    store, now = world.store, world.clock.now
    for pvc in store.list("PersistentVolumeClaim"):
        if (pvc.get("status") or {}).get("phase") == "Bound":
            continue
        cls = pvc["spec"].get("storageClassName")
        if cls and store.exists("StorageClass", cls):
            volume = f"pvc-{pvc['metadata']['uid']}"
            store.create({"apiVersion": "v1", "kind": "PersistentVolume",
                          "metadata": {"name": volume, "annotations": {
                              "pv.kubernetes.io/provisioned-by": store.get("StorageClass", cls).get("provisioner")}},
                          "spec": {"capacity": dict(pvc["spec"].get("resources", {}).get("requests") or {}),
                                   "accessModes": list(pvc["spec"].get("accessModes") or []),
                                   "storageClassName": cls, "persistentVolumeReclaimPolicy": "Delete",
                                   "claimRef": {"kind": "PersistentVolumeClaim", "name": pvc["metadata"]["name"],
                                                "namespace": pvc["metadata"]["namespace"],
                                                "uid": pvc["metadata"]["uid"]}},
                          "status": {"phase": "Bound"}})
            pvc["spec"]["volumeName"] = volume
            pvc["status"] = {"phase": "Bound", "accessModes": list(pvc["spec"].get("accessModes") or []),
                             "capacity": dict(pvc["spec"].get("resources", {}).get("requests") or {})}
            store.event(pvc, "Normal", "ProvisioningSucceeded",
                        f"Successfully provisioned volume {volume}", "persistentvolume-controller")
            continue
        pvc["status"] = {"phase": "Pending"}
        key = f"pvc/{pvc['metadata']['uid']}"
        if now - world.sched_last_event.get(key, -1e9) >= EVENT_EVERY_S:
            world.sched_last_event[key] = now
            msg = (f'storageclass.storage.k8s.io "{cls}" not found' if cls
                   else "no persistent volumes available for this claim and no storage class is set")
            store.event(pvc, "Warning", "ProvisioningFailed", msg, "persistentvolume-controller")


def volume_unfit(world: World, pod: dict[str, Any]) -> str | None:
    ns = pod["metadata"]["namespace"]
    for vol in pod["spec"].get("volumes") or []:
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if not claim:
            continue
        if not world.store.exists("PersistentVolumeClaim", claim, ns):
            return f'persistentvolumeclaim "{claim}" not found'
        if (world.store.get("PersistentVolumeClaim", claim, ns).get("status") or {}).get("phase") != "Bound":
            return "pod has unbound immediate PersistentVolumeClaims"
    return None


# --- node affinity and hooks ----------------------------------------------------------------------
def _expression_holds(labels: dict[str, str], expr: dict[str, Any]) -> bool:
    key, op, values = str(expr.get("key", "")), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def affinity_fits(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    """Required node affinity: some term whose every expression holds on the node's labels."""
    required = (((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    labels = node["metadata"].get("labels") or {}
    return not terms or any(all(_expression_holds(labels, e) for e in t.get("matchExpressions") or [])
                            for t in terms)


def post_start_error(world: World, c: dict[str, Any]) -> str | None:
    """The kubelet's message when an exec postStart hook cannot run in the container's image."""
    cmd = ((((c.get("lifecycle") or {}).get("postStart") or {}).get("exec") or {}).get("command")) or []
    if not cmd:
        return None
    binaries = world.app.images.get(c.get("image", ""), {}).get("binaries", [])
    if cmd[0] in HOOK_BINARIES or cmd[0] in binaries:
        return None
    return (f"Exec lifecycle hook ({cmd}) for Container \"{c['name']}\" failed - error: rpc error: code = Unknown "
            f"desc = failed to exec in container: exec: \"{cmd[0]}\": stat {cmd[0]}: no such file or directory, "
            f"message: \"\"")
