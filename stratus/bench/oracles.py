"""Mitigation oracles: the cause is gone, the app serves its workload, nothing else was damaged.

The only code besides the twin that reads ground truth (the fault records). One small check per fault
type, registered with ``@oracle``; ``grade`` adds the shared serving and collateral-damage checks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from stratus.context import Context
from stratus.tools.health import measure
from stratus.twin.cluster import TwinCluster
from stratus.twin.runtime import parse_quantity
from stratus.twin.world import World

Check = Callable[[World, dict[str, Any]], tuple[bool, str]]
ORACLES: dict[str, Check] = {}
MIN_AVAILABILITY = 0.95


def oracle(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        ORACLES[name] = fn
        return fn
    return register


def baseline(world: World) -> dict[str, Any]:
    """What the healthy world looked like before injection (for collateral-damage checks)."""
    st = world.store
    return {"deployments": {d["metadata"]["name"]: copy.deepcopy(d["spec"]) for d in st.list("Deployment")},
            "services": {s["metadata"]["name"]: copy.deepcopy(s["spec"]) for s in st.list("Service")},
            "policies": {p["metadata"]["name"] for p in st.list("NetworkPolicy")},
            "db": copy.deepcopy(world.db)}


def _container(world: World, target: str) -> dict[str, Any]:
    return world.store.get("Deployment", target, world.namespace)["spec"]["template"]["spec"]["containers"][0]


@oracle("noop")
def _noop(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    return True, "no fault"


@oracle("service_target_port")
def _target_port(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    svc = world.store.get("Service", rec["target"], world.namespace)
    tp = svc["spec"]["ports"][0].get("targetPort")
    ports = {int(p["containerPort"]) for p in _container(world, rec["target"]).get("ports", [])}
    return tp in ports, f"targetPort {tp}, container ports {sorted(ports)}"


@oracle("scale_to_zero")
def _scale(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    d = world.store.get("Deployment", rec["target"], world.namespace)
    want = rec["original"]["replicas"]
    ok = d["spec"]["replicas"] == want and d.get("status", {}).get("availableReplicas", 0) == want
    return ok, f"replicas {d['spec']['replicas']} (want exactly {want}), available " \
               f"{d.get('status', {}).get('availableReplicas', 0)}"


@oracle("nonexistent_node_selector")
def _node(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    sel = world.store.get("Deployment", rec["target"], world.namespace)["spec"]["template"]["spec"].get(
        "nodeSelector") or {}
    nodes = [n["metadata"].get("labels", {}) for n in world.store.list("Node")]
    ok = all(n.get("kubernetes.io/hostname") == n["kubernetes.io/hostname"] for n in nodes) and (
        not sel or any(all(n.get(k) == v for k, v in sel.items()) for n in nodes))
    return ok, f"nodeSelector {sel}"


def _image_ok(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    image = _container(world, rec["target"]).get("image")
    return image == rec["original"]["image"], f"image {image} (healthy {rec['original']['image']})"


ORACLES["crashing_image"] = _image_ok
ORACLES["missing_image"] = _image_ok


@oracle("wrong_command")
def _command(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    cmd = _container(world, rec["target"]).get("command")
    return cmd == rec["original"]["command"], f"command {cmd}"


def _has_role(world: World, db: str, user: str, database: str) -> bool:
    u = world.db[db]["users"].get(user)
    return bool(u) and any(r["role"] in ("readWrite", "dbOwner") and r["db"] == database for r in u["roles"])


@oracle("revoke_db_role")
def _role(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    o = rec["original"]
    ok = _has_role(world, rec["target"], o["user"], o["db"])
    return ok, f"{o['user']} {'has' if ok else 'lacks'} readWrite on {o['db']}"


@oracle("drop_db_user")
def _user(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    o = rec["original"]
    u = world.db[rec["target"]]["users"].get(o["user"])
    ok = bool(u) and u["pwd"] == o["account"]["pwd"] and _has_role(world, rec["target"], o["user"], o["db"])
    return ok, f"user {o['user']} {'restored' if ok else 'missing or without its role'}"


@oracle("env_misconfig")
def _env(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    env = {e["name"]: e.get("value") for e in _container(world, rec["target"]).get("env", [])}
    var = rec["original"]["var"]
    return env.get(var) == rec["original"]["value"], f"{var}={env.get(var)}"


@oracle("network_policy_block")
def _netpol(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    gone = not world.store.exists("NetworkPolicy", rec["policy"], world.namespace)
    return gone, f"NetworkPolicy {rec['policy']} {'deleted' if gone else 'still present'}"


@oracle("memory_limit_oom")
def _oom(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    c = _container(world, rec["target"])
    limit = parse_quantity((c.get("resources") or {}).get("limits", {}).get("memory"))
    binary = world.app.binaries[world.app.components[rec["target"]]["binary"]]
    need = float(binary.get("memory_mi", 32)) * 1024**2 * 1.05
    return limit is None or limit >= need, f"memory limit {limit} (process needs ~{need:.0f})"


@oracle("readiness_probe_misconfig")
def _probe(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    probe = _container(world, rec["target"]).get("readinessProbe")
    ports = {int(p["containerPort"]) for p in _container(world, rec["target"]).get("ports", [])}
    handler = (probe or {}).get("tcpSocket") or (probe or {}).get("httpGet") or {}
    ok = probe is None or probe == rec["original"]["readinessProbe"] or int(handler.get("port", -1)) in ports
    return ok, f"readinessProbe {probe}"


def _chaos_gone(world: World, rec: dict[str, Any]) -> tuple[bool, str]:
    ch = rec["chaos"]
    gone = not world.store.exists(ch["kind"], ch["name"], world.namespace)
    return gone, f"{ch['kind']} {ch['name']} {'deleted' if gone else 'still present'}"


ORACLES["pod_failure"] = _chaos_gone
ORACLES["network_delay"] = _chaos_gone


def pods_healthy(pods: list[dict[str, Any]]) -> list[str]:
    """AIOpsLab's generic check: every container ready, none waiting or abnormally terminated."""
    problems = []
    for p in pods:
        for cs in p.get("status", {}).get("containerStatuses", []) or [{"ready": False, "name": "?"}]:
            if not cs.get("ready"):
                state = cs.get("state", {})
                why = (state.get("waiting") or {}).get("reason") or ("not ready" if "running" in state else "not started")
                problems.append(f"pod {p['metadata']['name']} container {cs.get('name')}: {why}")
    return problems


def collateral(world: World, base: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    """Damage outside the injected faults: deleted or rescaled workloads, broken services, dead pods."""
    problems = []
    targets = {r.get("target") for r in records}
    for name, spec in base["deployments"].items():
        if not world.store.exists("Deployment", name, world.namespace):
            problems.append(f"Deployment {name} was deleted")
            continue
        d = world.store.get("Deployment", name, world.namespace)
        if name not in targets and d["spec"].get("replicas") != spec.get("replicas"):
            problems.append(f"Deployment {name} rescaled to {d['spec'].get('replicas')}")
    for name in base["services"]:
        if not world.store.exists("Service", name, world.namespace):
            problems.append(f"Service {name} was deleted")
    problems += pods_healthy(world.store.list("Pod", world.namespace))
    return problems


def grade(world: World, cluster: TwinCluster, records: list[dict[str, Any]], base: dict[str, Any],
          ctx: Context, changed: bool) -> tuple[bool, list[str]]:
    """Mitigated iff every fault's cause is gone, the app serves, and nothing else was harmed."""
    notes: list[str] = []
    ok = True
    for rec in records:
        cause_gone, why = ORACLES[rec["type"]](world, rec)
        notes.append(f"{rec['type']}@{rec.get('target')}: {why}")
        ok &= cause_gone
    health = measure(cluster, ctx, world.namespace)
    if health.availability < MIN_AVAILABILITY:
        ok = False
        notes.append(f"app not serving: availability {health.availability:.3f}")
    damage = collateral(world, base, records)
    if damage:
        ok = False
        notes += damage
    if all(r["type"] == "noop" for r in records) and changed:
        ok = False
        notes.append("changed a healthy system (false positive)")
    return ok, notes
