"""Mitigation oracles of the operator-mistake faults (``twin.faults_ops``, ``twin.faults_capacity``).

Same shape as ``bench.oracles`` (which registers these): a check that the cause is gone, judged on
the objects the fault changed, plus what the right fix may touch (a node name ``*`` means any node).
A restart, a deleted pod or a scaled workload leaves the cause in place, so it never passes; where the
fault leaves the target with no pods at all, the check also wants the target available again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from stratus.twin.admission import affinity_fits, apply_limit_ranges, quota_error
from stratus.twin.runtime import parse_quantity
from stratus.twin.world import World

Check = Callable[[World, dict[str, Any]], tuple[bool, str]]
Touch = tuple[str, str, str]
OPS_ORACLES: dict[str, tuple[Check, tuple[Touch, ...]]] = {}
CONTAINER = "template.spec.containers.0"


def ops_oracle(name: str, *touches: Touch) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        OPS_ORACLES[name] = (fn, touches)
        return fn
    return register


def _deployment(world: World, target: str) -> dict[str, Any]:
    return world.store.get("Deployment", target, world.namespace)


def _container(world: World, target: str) -> dict[str, Any]:
    return _deployment(world, target)["spec"]["template"]["spec"]["containers"][0]


def _available(world: World, target: str) -> tuple[bool, str]:
    d = _deployment(world, target)
    want, have = int(d["spec"].get("replicas", 1)), int((d.get("status") or {}).get("availableReplicas", 0))
    return want >= 1 and have >= want, f"{target} available {have}/{want}"


def _both(first: tuple[bool, str], second: tuple[bool, str]) -> tuple[bool, str]:
    return first[0] and second[0], f"{first[1]}; {second[1]}"


def _service_routes(world: World, target: str, port: int) -> tuple[bool, str]:
    """The target's Service selects its pods and serves ``port`` on a port the container listens on."""
    if not world.store.exists("Service", target, world.namespace):
        return False, f"Service {target} missing"
    svc = world.store.get("Service", target, world.namespace)
    labels = _deployment(world, target)["spec"]["template"]["metadata"].get("labels") or {}
    sel = svc["spec"].get("selector") or {}
    selects = bool(sel) and all(labels.get(k) == v for k, v in sel.items())
    ports = {int(p["containerPort"]) for p in _container(world, target).get("ports", [])}
    sport = next((p for p in svc["spec"].get("ports", []) if int(p["port"]) == port), None)
    serves = sport is not None and int(sport.get("targetPort", sport["port"])) in ports
    return selects and serves, f"Service {target}: selector {sel} {'matches' if selects else 'misses'} the pods, " \
                               f"port {port} {'reaches' if serves else 'does not reach'} the container"


# --- wiring and dependencies ----------------------------------------------------------------------
@ops_oracle("service_selector_typo", ("Service", "{target}", "selector"))
def _selector(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    return _service_routes(world, rec["target"], world.app.port_of(rec["target"]))


@ops_oracle("service_deleted", ("Service", "{target}", ""))
def _service_deleted(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    ports = [int(p["port"]) for p in rec["original"]["spec"]["ports"]]
    results = [_service_routes(world, rec["target"], p) for p in ports]
    return all(ok for ok, _ in results), results[0][1]


@ops_oracle("db_service_wrong_port", ("Service", "{target}", ""))
def _db_port(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    return _service_routes(world, rec["target"], int(rec["original"]["spec"]["ports"][0]["port"]))


@ops_oracle("service_port_changed", ("Service", "{target}", "ports.0.port"))
def _service_port(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    return _service_routes(world, rec["target"], int(rec["original"]["port"]))


@ops_oracle("env_wrong_host", ("Deployment", "{target}", f"{CONTAINER}.env.{{var}}"))
def _env_host(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    env = {e["name"]: e.get("value") for e in _container(world, rec["target"]).get("env", [])}
    var = rec["original"]["var"]
    return env.get(var) == rec["original"]["value"], f"{var}={env.get(var)}"


@ops_oracle("deployment_deleted", ("Deployment", "{target}", ""))
def _deployment_deleted(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    if not world.store.exists("Deployment", rec["target"], world.namespace):
        return False, f"Deployment {rec['target']} missing"
    was = rec["original"]["template"]["spec"]["containers"][0]
    now = _container(world, rec["target"])
    same = all(now.get(k) == was.get(k) for k in ("image", "command", "args", "ports"))
    return _both((same, f"container {'as before' if same else 'differs from the deleted one'}"),
                 _available(world, rec["target"]))


# --- configuration and secrets --------------------------------------------------------------------
def _config_key(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    name, key = rec["configmap"], rec["original"]["key"]
    if not world.store.exists("ConfigMap", name, world.namespace):
        return False, f"ConfigMap {name} missing"
    value = (world.store.get("ConfigMap", name, world.namespace).get("data") or {}).get(key)
    return _both((value == rec["original"]["value"], f"ConfigMap {name} {key}={value}"),
                 _available(world, rec["target"]))


ops_oracle("configmap_key_edited", ("ConfigMap", "{configmap}", "data.{key}"))(_config_key)
ops_oracle("configmap_key_deleted", ("ConfigMap", "{configmap}", "data.{key}"))(_config_key)


@ops_oracle("secret_missing", ("Secret", "{secret}", ""))
def _secret(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    name = rec["secret"]
    there = world.store.exists("Secret", name, world.namespace)
    same = there and world.store.get("Secret", name, world.namespace).get("data") == rec["original"]["data"]
    return _both((same, f"Secret {name} {'restored' if same else 'missing or different'}"),
                 _available(world, rec["target"]))


# --- probes and lifecycle -------------------------------------------------------------------------
@ops_oracle("liveness_probe_wrong_port", ("Deployment", "{target}", f"{CONTAINER}.livenessProbe"))
def _liveness(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    c = _container(world, rec["target"])
    probe = c.get("livenessProbe")
    ports = {int(p["containerPort"]) for p in c.get("ports", [])}
    handler = (probe or {}).get("tcpSocket") or (probe or {}).get("httpGet") or {}
    ok = probe is None or probe == rec["original"]["livenessProbe"] or int(handler.get("port", -1)) in ports
    return ok, f"livenessProbe {probe}"


@ops_oracle("command_typo", ("Deployment", "{target}", f"{CONTAINER}.command"))
def _command(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    cmd = _container(world, rec["target"]).get("command")
    return cmd == rec["original"]["command"], f"command {cmd}"


@ops_oracle("poststart_hook_failure", ("Deployment", "{target}", f"{CONTAINER}.lifecycle"))
def _poststart(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    hook = (_container(world, rec["target"]).get("lifecycle") or {}).get("postStart")
    return hook is None or hook == (rec["original"]["lifecycle"] or {}).get("postStart"), f"postStart {hook}"


# --- scheduling and capacity ----------------------------------------------------------------------
def _schedulable(node: dict[str, Any]) -> bool:
    spec = node.get("spec", {})
    return not spec.get("unschedulable") and not any(
        t.get("effect") in ("NoSchedule", "NoExecute") for t in spec.get("taints") or [])


@ops_oracle("request_too_large", ("Deployment", "{target}", f"{CONTAINER}.resources.requests"))
def _request(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    requests = (_container(world, rec["target"]).get("resources") or {}).get("requests") or {}
    nodes = [n for n in world.store.list("Node") if _schedulable(n)]
    fits = [n["metadata"]["name"] for n in nodes
            if all((parse_quantity(v) or 0.0) <= (parse_quantity(n["status"]["allocatable"].get(k)) or 0.0)
                   for k, v in requests.items() if k in ("cpu", "memory"))]
    return _both((bool(fits), f"requests {requests} fit {', '.join(fits) or 'no node'}"),
                 _available(world, rec["target"]))


@ops_oracle("node_taint", ("Node", "*", "taints"))
def _taint(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    key = rec["taint"]["key"]
    left = [n["metadata"]["name"] for n in world.store.list("Node")
            if any(t.get("key") == key for t in n["spec"].get("taints") or [])]
    return _both((not left, f"taint {key} {'still on ' + ', '.join(left) if left else 'removed'}"),
                 _available(world, rec["target"]))


@ops_oracle("node_cordon", ("Node", "*", "unschedulable"))
def _cordon(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    left = [n["metadata"]["name"] for n in world.store.list("Node") if n["spec"].get("unschedulable")]
    return _both((not left, f"{'cordoned: ' + ', '.join(left) if left else 'every node schedulable'}"),
                 _available(world, rec["target"]))


@ops_oracle("affinity_to_nothing", ("Deployment", "{target}", "template.spec.affinity"))
def _affinity(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    template = {"spec": _deployment(world, rec["target"])["spec"]["template"]["spec"]}
    fits = [n["metadata"]["name"] for n in world.store.list("Node") if _schedulable(n) and affinity_fits(template, n)]
    return _both((bool(fits), f"node affinity fits {', '.join(fits) or 'no schedulable node'}"),
                 _available(world, rec["target"]))


# --- quotas ---------------------------------------------------------------------------------------
def _template_pod(world: World, target: str) -> dict[str, Any]:
    tmpl = copy.deepcopy(_deployment(world, target)["spec"]["template"])
    return {"metadata": {"name": f"{target}-new", "namespace": world.namespace,
                         **{k: v for k, v in (tmpl.get("metadata") or {}).items() if k != "name"}},
            "spec": tmpl["spec"]}


@ops_oracle("resource_quota_exhausted", ("ResourceQuota", "{quota}", ""),
            ("Deployment", "{target}", f"{CONTAINER}.resources"))
def _quota(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    refused = quota_error(world, _template_pod(world, rec["target"]))
    return _both((refused is None, refused or "a new pod of the target is admitted"), _available(world, rec["target"]))


@ops_oracle("limit_range_default_oom", ("LimitRange", "{limitrange}", ""),
            ("Deployment", "{target}", f"{CONTAINER}.resources"))
def _limit_range(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    pod = _template_pod(world, rec["target"])
    apply_limit_ranges(world, pod)
    limit = parse_quantity(((pod["spec"]["containers"][0].get("resources") or {}).get("limits") or {}).get("memory"))
    binary = world.app.binaries[world.app.components[rec["target"]]["binary"]]
    need = float(binary.get("memory_mi", 32)) * 1024**2 * 1.05
    ok = limit is None or limit >= need
    return _both((ok, f"a new pod's memory limit {limit} (process needs ~{need:.0f})"), _available(world, rec["target"]))


# --- storage --------------------------------------------------------------------------------------
def _claim_bound(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    name = rec["claim"]
    if not world.store.exists("PersistentVolumeClaim", name, world.namespace):
        return False, f"PersistentVolumeClaim {name} missing"
    pvc = world.store.get("PersistentVolumeClaim", name, world.namespace)
    cls = pvc["spec"].get("storageClassName")
    bound = (pvc.get("status") or {}).get("phase") == "Bound" and bool(cls) and world.store.exists("StorageClass", cls)
    return _both((bound, f"PVC {name} {'bound' if bound else 'not bound'} (class {cls})"),
                 _available(world, rec["target"]))


ops_oracle("pvc_wrong_storage_class", ("PersistentVolumeClaim", "{claim}", ""))(_claim_bound)
ops_oracle("pvc_deleted", ("PersistentVolumeClaim", "{claim}", ""))(_claim_bound)
