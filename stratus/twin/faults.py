"""Fault injectors: each changes objects or runtime state of the twin, never telemetry directly.

A registry of small same-shaped entries: ``@fault(name, ...)`` registers an injector
``inject(world, target, params) -> record``. The record keeps what the oracle needs to decide whether
the cause is gone (original values); it lives with the bench, never with agents.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stratus.twin.world import World

Injector = Callable[[World, str, dict[str, Any]], dict[str, Any]]
Stager = Callable[[World, str, dict[str, Any]], None]
DATA = Path(__file__).parent / "data"


@dataclass
class FaultSpec:
    name: str
    summary: str
    targets: str  # which components make sense: app | database | any | none
    params: dict[str, str]  # name -> description (with default)
    system_level: str | None
    fault_type: str | None
    inject: Injector
    defaults: dict[str, Any] = field(default_factory=dict)
    family: str = ""  # failure family (``KNOWN_FAMILIES`` for the original catalogue)
    new: bool = False  # added to widen the catalogue (issue 11); False: the original, "known" types
    stage: Stager | None = None  # makes the healthy app depend on what the fault will break


REGISTRY: dict[str, FaultSpec] = {}


class FaultError(ValueError):
    """A fault that cannot be injected as asked (names the field and what would work)."""


def fault(name: str, summary: str, targets: str, params: dict[str, str] | None = None,
          defaults: dict[str, Any] | None = None, system_level: str | None = None,
          fault_type: str | None = None) -> Callable[[Injector], Injector]:
    def register(fn: Injector) -> Injector:
        REGISTRY[name] = FaultSpec(name, summary, targets, params or {}, system_level, fault_type, fn,
                                   defaults or {})
        return fn
    return register


def check_target(world: World, spec: FaultSpec, target: str | None) -> None:
    comps = world.app.components
    if spec.targets == "none":
        return
    if not target:
        raise FaultError(f"faults[].target is required for fault {spec.name!r}")
    if target not in comps:
        raise FaultError(f"faults[].target {target!r} is not a component of {world.app.name}; "
                         f"choose one of: {', '.join(comps)}")
    kind = world.app.kind_of(target)
    if spec.targets == "app" and kind != "app":
        raise FaultError(f"faults[].target: fault {spec.name!r} needs an application service as target, "
                         f"but {target!r} is a {kind}; choose one of: {', '.join(world.app.app_services())}")
    if spec.targets == "database" and kind != "mongodb":
        dbs = [c for c in comps if world.app.kind_of(c) == "mongodb"]
        raise FaultError(f"faults[].target: fault {spec.name!r} needs a database as target, not {target!r}; "
                         f"choose one of: {', '.join(dbs)}")


def inject(world: World, name: str, target: str | None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    if name not in REGISTRY:
        raise FaultError(f"faults[].type {name!r} is unknown; see `stratus faults` ({', '.join(sorted(REGISTRY))})")
    spec = REGISTRY[name]
    check_target(world, spec, target)
    merged = {**spec.defaults, **(params or {})}
    unknown = set(merged) - set(spec.params)
    if unknown:
        raise FaultError(f"faults[].params: unknown parameter(s) {sorted(unknown)} for {name!r}; "
                         f"allowed: {sorted(spec.params) or 'none'}")
    record = spec.inject(world, target or "", merged)
    return {"type": name, "target": target, "params": merged, **record}


def stage(world: World, name: str, target: str | None, params: dict[str, Any] | None = None) -> None:
    """Before warm-up: set up what the healthy app has and the fault will break (a ConfigMap the
    service reads, a PVC its database mounts); nothing for faults that need no set-up."""
    spec = REGISTRY[name]
    if spec.stage is not None:
        spec.stage(world, target or "", {**spec.defaults, **(params or {})})


# --- helpers ---------------------------------------------------------------------------------
def _deploy(world: World, target: str) -> dict[str, Any]:
    return world.store.get("Deployment", target, world.namespace)


def _update_container(world: World, target: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    d = copy.deepcopy(_deploy(world, target))
    container = d["spec"]["template"]["spec"]["containers"][0]
    before = copy.deepcopy(container)
    fn(container)
    world.store.update(d)
    return before


def _recreate_deployment(world: World, target: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Delete and re-apply the Deployment (as AIOpsLab does), so it has no rollout history."""
    d = copy.deepcopy(_deploy(world, target))
    before = copy.deepcopy(d["spec"]["template"])
    world.store.delete("Deployment", target, world.namespace)
    world.controllers.garbage_collect()
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        d["metadata"].pop(key, None)
    d.pop("status", None)
    fn(d)
    world.store.create(d)
    return before


def _dependents(world: World, db: str) -> list[str]:
    return [c for c, s in world.app.components.items() if s.get("mongo") == db]


def _restart_pods(world: World, components: list[str]) -> None:
    for comp in components:
        for pod in world.store.list("Pod", world.namespace, {world.app.label_key: comp}):
            world.delete_pod(pod)


# --- the catalogue ---------------------------------------------------------------------------
@fault("noop", "No fault: the control scenario (nothing is wrong).", "none")
def _noop(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    return {}


@fault("service_target_port", "Service targetPort no longer matches the container port.", "any",
       {"port": "wrong targetPort (default 9999)"}, {"port": 9999}, "Virtualization", "Misconfiguration")
def _target_port(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    svc = copy.deepcopy(world.store.get("Service", target, world.namespace))
    original = svc["spec"]["ports"][0]["targetPort"]
    svc["spec"]["ports"][0]["targetPort"] = int(params["port"])
    world.store.update(svc)
    return {"original": {"targetPort": original}}


@fault("scale_to_zero", "Deployment scaled to 0 replicas.", "any", {}, {}, "Virtualization", "Operation Error")
def _scale_zero(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    d = copy.deepcopy(_deploy(world, target))
    original = d["spec"]["replicas"]
    d["spec"]["replicas"] = 0
    world.store.update(d)
    return {"original": {"replicas": original}}


@fault("nonexistent_node_selector", "Deployment re-created with a nodeSelector no node matches.", "any",
       {"node": "hostname in the selector (default extra-node)"}, {"node": "extra-node"},
       "Virtualization", "Dependency Problem")
def _node_selector(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    def change(d: dict[str, Any]) -> None:
        d["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": params["node"]}
    return {"original": {"template": _recreate_deployment(world, target, change)}}


@fault("crashing_image", "Deployment rolled to a buggy build that crashes at start-up.", "app",
       {"image": "buggy image (default <repo>/<svc>:app3, pushed to the registry)"}, {},
       "Application", "Misconfiguration")
def _crashing_image(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    binary = world.app.components[target]["binary"]
    image = params.get("image") or f"{world.app.default_image.split('/')[0]}/{binary}:app3"
    world.app.images.setdefault(image, {"binaries": [binary],
                                        "crash": "panic: runtime error: invalid memory address or nil "
                                                 "pointer dereference"})
    before = _update_container(world, target, lambda c: c.update(image=image))
    return {"original": {"image": before["image"]}, "bad_image": image}


@fault("missing_image", "Deployment points at an image tag that does not exist.", "any",
       {"image": "image reference that cannot be pulled (default <image>-missing tag)"}, {},
       "Application", "Misconfiguration")
def _missing_image(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    current = _deploy(world, target)["spec"]["template"]["spec"]["containers"][0]["image"]
    image = params.get("image") or current.split(":")[0] + ":v0.0.0-missing"
    before = _update_container(world, target, lambda c: c.update(image=image))
    return {"original": {"image": before["image"]}, "bad_image": image}


@fault("wrong_command", "Deployment re-created running another service's binary.", "app",
       {"command": "binary to run instead (default: another service of the app)"}, {},
       "Application", "Network/Storage Issue")
def _wrong_command(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    own = world.app.components[target]["binary"]
    others = [world.app.components[c]["binary"] for c in world.app.app_services()
              if world.app.components[c]["binary"] != own]
    binary = params.get("command") or others[(len(target) + world.seed) % len(others)]

    def change(d: dict[str, Any]) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["command"] = [binary]
    before = _recreate_deployment(world, target, change)
    return {"original": {"command": before["spec"]["containers"][0].get("command")}, "wrong": binary}


@fault("revoke_db_role", "The app user's readWrite role on its database is revoked; clients restarted.",
       "database", {"db": "database (default the component's first)", "user": "account (default admin)"},
       {"user": "admin"}, "Application", "Authentication Issue")
def _revoke_role(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    db = params.get("db") or world.db[target]["databases"][0]
    world.db_exec(target, {"op": "revoke_role", "user": params["user"], "roles": [{"role": "readWrite", "db": db}]})
    _restart_pods(world, _dependents(world, target))
    return {"original": {"user": params["user"], "db": db}}


@fault("drop_db_user", "The app's database account is dropped; clients restarted.", "database",
       {"user": "account (default admin)"}, {"user": "admin"}, "Application", "Network/Storage Issue")
def _drop_user(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    user = world.db[target]["users"].get(params["user"])
    world.db_exec(target, {"op": "drop_user", "user": params["user"]})
    _restart_pods(world, _dependents(world, target))
    return {"original": {"user": params["user"], "account": user,
                         "db": world.db[target]["databases"][0]}}


@fault("env_misconfig", "An address in the service's environment points at a wrong port.", "app",
       {"var": "variable (default: the first dependency address)", "value": "new value (default host:9999)"}, {},
       "Application", "Misconfiguration")
def _env_misconfig(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    env = _deploy(world, target)["spec"]["template"]["spec"]["containers"][0].get("env", [])
    addrs = [e for e in env if e["name"].endswith("_ADDR") and e["name"] != "CONSUL_ADDR"]
    var = params.get("var") or (addrs[0]["name"] if addrs else "CONSUL_ADDR")
    hit = next((e for e in env if e["name"] == var), None)
    if hit is None:
        raise FaultError(f"faults[].params.var {var!r} is not set on {target}; set: {[e['name'] for e in env]}")
    value = params.get("value") or hit["value"].rpartition(":")[0] + ":9999"

    def change(c: dict[str, Any]) -> None:
        for e in c["env"]:
            if e["name"] == var:
                e["value"] = value
    _update_container(world, target, change)
    return {"original": {"var": var, "value": hit["value"]}, "value": value}


@fault("network_policy_block", "A NetworkPolicy drops all ingress to the target's pods.", "any",
       {"name": "policy name (default deny-<target>)"}, {}, "Virtualization", "Network/Storage Issue")
def _netpol(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name") or f"deny-{target}"
    world.store.create({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": name, "namespace": world.namespace},
                        "spec": {"podSelector": {"matchLabels": {world.app.label_key: target}},
                                 "policyTypes": ["Ingress"], "ingress": []}})
    return {"policy": name}


@fault("memory_limit_oom", "Memory limit set below the process's working set (OOMKilled).", "any",
       {"limit": "memory limit (default 16Mi)"}, {"limit": "16Mi"}, "Virtualization", "Misconfiguration")
def _oom(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    def change(c: dict[str, Any]) -> None:
        c.setdefault("resources", {}).setdefault("limits", {})["memory"] = params["limit"]
    before = _update_container(world, target, change)
    return {"original": {"memory": (before.get("resources") or {}).get("limits", {}).get("memory")}}


@fault("readiness_probe_misconfig", "A readiness probe checks a port the process does not listen on.", "any",
       {"port": "probed port (default 9999)"}, {"port": 9999}, "Application", "Misconfiguration")
def _probe(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    def change(c: dict[str, Any]) -> None:
        c["readinessProbe"] = {"tcpSocket": {"port": int(params["port"])}, "periodSeconds": 10,
                               "failureThreshold": 3}
    before = _update_container(world, target, change)
    return {"original": {"readinessProbe": before.get("readinessProbe")}}


@fault("pod_failure", "Chaos Mesh PodChaos pod-failure on the target's pods.", "any",
       {"duration": "how long the chaos acts (default 1h)", "name": "object name"}, {"duration": "1h"},
       "Virtualization", "Operation Error")
def _pod_failure(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name") or f"pod-failure-{target}"
    world.store.create({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
                        "metadata": {"name": name, "namespace": world.namespace},
                        "spec": {"action": "pod-failure", "mode": "all", "duration": params["duration"],
                                 "selector": {"namespaces": [world.namespace],
                                              "labelSelectors": {world.app.label_key: target}}}})
    return {"chaos": {"kind": "PodChaos", "name": name}}


@fault("network_delay", "Chaos Mesh NetworkChaos delaying every packet to the target's pods.", "any",
       {"latency": "added delay (default 10s)", "duration": "how long (default 1h)", "name": "object name"},
       {"latency": "10s", "duration": "1h"}, "Virtualization", "Network/Storage Issue")
def _network_delay(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name") or f"delay-{target}"
    world.store.create({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
                        "metadata": {"name": name, "namespace": world.namespace},
                        "spec": {"action": "delay", "mode": "all", "duration": params["duration"],
                                 "delay": {"latency": params["latency"], "correlation": "100", "jitter": "0ms"},
                                 "selector": {"namespaces": [world.namespace],
                                              "labelSelectors": {world.app.label_key: target}}}})
    return {"chaos": {"kind": "NetworkChaos", "name": name}}


# --- the wider catalogue (issue 11): operator mistakes, registered here so every reader sees them ------
def _register_ops() -> None:
    from stratus.twin.faults_capacity import CATALOGUE as CAPACITY
    from stratus.twin.faults_ops import CATALOGUE as OPS

    for spec in (*OPS, *CAPACITY):
        REGISTRY[spec.name] = FaultSpec(spec.name, spec.summary, spec.targets, spec.params, spec.system_level,
                                        spec.fault_type, spec.inject, spec.defaults, spec.family, True,
                                        spec.stage)
    for name, family in yaml.safe_load((DATA / "fault-families.yaml").read_text())["known"].items():
        REGISTRY[name].family = family


_register_ops()
