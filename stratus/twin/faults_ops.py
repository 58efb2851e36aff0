"""Operator mistakes as fault injectors: wiring, configuration, probes and lifecycle, dependencies.

Each fault is made the way people break clusters, through ordinary object changes: a patched Service
selector, a deleted and re-created Service, an edited ConfigMap followed by a rollout restart, a
Secret deleted by a clean-up. Symptoms follow from the twin's model. Entries are registered into the
fault registry by ``stratus.twin.faults``, each with its family; they are the catalogue's "new" types.
Some need the healthy app to depend on what they break (a ConfigMap the service reads): their
``stage`` runs before warm-up, so the dependency is part of the healthy baseline.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stratus.cluster.mutate import RESTARTED_AT
from stratus.twin.store import rfc3339
from stratus.twin.world import World

Injector = Callable[[World, str, dict[str, Any]], dict[str, Any]]
Stager = Callable[[World, str, dict[str, Any]], None]
FAMILIES = ("wiring", "scheduling", "configuration", "probes", "storage", "quotas", "dependencies")


@dataclass
class OpsFault:
    """One catalogue entry, shaped like ``faults.FaultSpec`` (which it becomes when registered)."""

    name: str
    summary: str
    targets: str
    family: str
    inject: Injector
    params: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    system_level: str | None = None
    fault_type: str | None = None
    stage: Stager | None = None


CATALOGUE: list[OpsFault] = []


def ops_fault(catalogue: list[OpsFault], name: str, summary: str, targets: str, family: str, *,
              params: dict[str, str] | None = None, defaults: dict[str, Any] | None = None,
              system_level: str | None = None, fault_type: str | None = None,
              stage: Stager | None = None) -> Callable[[Injector], Injector]:
    """Add an injector to ``catalogue`` (the registry entry is made by ``stratus.twin.faults``)."""
    if family not in FAMILIES:
        raise ValueError(f"family {family!r} of fault {name!r} is not one of {', '.join(FAMILIES)}")

    def register(fn: Injector) -> Injector:
        catalogue.append(OpsFault(name, summary, targets, family, fn, params or {}, defaults or {},
                                  system_level, fault_type, stage))
        return fn
    return register


# --- object changes as an operator makes them -----------------------------------------------------
def get(world: World, kind: str, name: str) -> dict[str, Any]:
    return copy.deepcopy(world.store.get(kind, name, world.namespace))


def container(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]["containers"][0]


def patch_deployment(world: World, target: str, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """``kubectl patch deploy``: change the live object; returns the container as it was."""
    d = get(world, "Deployment", target)
    before = copy.deepcopy(container(d))
    fn(d)
    world.store.update(d)
    return before


def rollout_restart(world: World, target: str) -> None:
    """``kubectl rollout restart``: how an operator makes pods pick up an edited ConfigMap or Secret."""
    def mark(d: dict[str, Any]) -> None:
        meta = d["spec"]["template"].setdefault("metadata", {})
        meta.setdefault("annotations", {})[RESTARTED_AT] = rfc3339(world.clock.now)
    patch_deployment(world, target, mark)


def delete_pods(world: World, target: str) -> None:
    """The target's pods go away (a node drain, an eviction) and their ReplicaSet makes new ones."""
    for pod in world.store.list("Pod", world.namespace, {world.app.label_key: target}):
        world.store.event(pod, "Normal", "Killing", "Stopping container (pod evicted for node maintenance)",
                          "kubelet")
        world.delete_pod(pod)


def recreate(world: World, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj`` anew, as ``kubectl create -f`` of an old manifest would (no server-set fields)."""
    fresh = copy.deepcopy(obj)
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        fresh["metadata"].pop(key, None)
    fresh.pop("status", None)
    return world.store.create(fresh)


def typo(word: str) -> str:
    """A plausible misspelling: the last two letters swapped (``geo`` -> ``goe``)."""
    return word[:-2] + word[-1] + word[-2] if len(word) >= 3 and word[-1] != word[-2] else word + "s"


def addr_vars(world: World, target: str) -> list[dict[str, Any]]:
    env = container(get(world, "Deployment", target)).get("env") or []
    return [e for e in env if e["name"].endswith("_ADDR") and e["name"] != "CONSUL_ADDR" and "value" in e]


def _need_addr(world: World, target: str) -> dict[str, Any]:
    found = addr_vars(world, target)
    if not found:
        raise ValueError(f"faults[].target {target!r} has no dependency address in its env; choose a service "
                         f"that calls another (e.g. frontend, search, geo)")
    return found[0]


# --- wiring ---------------------------------------------------------------------------------------
@ops_fault(CATALOGUE, "service_selector_typo", "A patch to the Service's selector misspells the pod label.",
           "any", "wiring", system_level="Virtualization", fault_type="Misconfiguration")
def _selector_typo(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    svc = get(world, "Service", target)
    original = dict(svc["spec"]["selector"])
    key = world.app.label_key
    svc["spec"]["selector"] = {**original, key: typo(str(original[key]))}
    world.store.update(svc)
    return {"original": {"selector": original}}


@ops_fault(CATALOGUE, "service_deleted", "The Service in front of the target was deleted (a clean-up gone wrong).",
           "any", "wiring", system_level="Virtualization", fault_type="Operation Error")
def _service_deleted(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    svc = get(world, "Service", target)
    world.store.delete("Service", target, world.namespace)
    return {"original": {"spec": svc["spec"]}}


@ops_fault(CATALOGUE, "env_wrong_host", "A dependency address in the env names a host that does not exist.",
           "app", "wiring", params={"var": "variable (default: the first dependency address)"},
           system_level="Application", fault_type="Misconfiguration")
def _env_wrong_host(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    var = params.get("var") or _need_addr(world, target)["name"]
    hit = next((e for e in addr_vars(world, target) if e["name"] == var), None)
    if hit is None:
        raise ValueError(f"faults[].params.var {var!r} is not a dependency address of {target}")
    host, _, port = hit["value"].rpartition(":")
    value = f"{typo(host)}:{port}"

    def change(d: dict[str, Any]) -> None:
        for e in container(d)["env"]:
            if e["name"] == var:
                e["value"] = value
    patch_deployment(world, target, change)
    return {"original": {"var": var, "value": hit["value"]}, "value": value}


@ops_fault(CATALOGUE, "service_port_changed", "The Service's port was edited; clients still dial the old one.",
           "any", "wiring", params={"port": "new port (default: the old one plus 1)"},
           system_level="Virtualization", fault_type="Misconfiguration")
def _service_port(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    svc = get(world, "Service", target)
    original = int(svc["spec"]["ports"][0]["port"])
    svc["spec"]["ports"][0]["port"] = int(params.get("port") or original + 1)
    world.store.update(svc)
    return {"original": {"port": original}}


# --- dependencies ---------------------------------------------------------------------------------
@ops_fault(CATALOGUE, "db_service_wrong_port",
           "A database's Service was deleted and re-created from an old manifest with another port.",
           "database", "dependencies", params={"port": "port of the old manifest (default 27018)"},
           defaults={"port": 27018}, system_level="Virtualization", fault_type="Dependency Problem")
def _db_service_port(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    svc = get(world, "Service", target)
    world.store.delete("Service", target, world.namespace)
    old = copy.deepcopy(svc)
    port = int(params["port"])
    old["spec"]["ports"] = [{"name": str(port), "port": port, "targetPort": port, "protocol": "TCP"}]
    old["spec"].pop("clusterIP", None)
    recreate(world, old)
    for comp, spec in world.app.components.items():  # their open connections died with the old Service
        if spec.get("mongo") == target:
            delete_pods(world, comp)
    return {"original": {"spec": svc["spec"]}}


@ops_fault(CATALOGUE, "deployment_deleted", "A dependency's Deployment was deleted by mistake.",
           "any", "dependencies", system_level="Virtualization", fault_type="Operation Error")
def _deployment_deleted(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    d = get(world, "Deployment", target)
    world.store.delete("Deployment", target, world.namespace)
    world.controllers.garbage_collect()
    return {"original": {"template": d["spec"]["template"], "replicas": d["spec"].get("replicas", 1)}}


# --- configuration and secrets --------------------------------------------------------------------
def config_name(target: str) -> str:
    return f"{target}-config"


def _stage_config(world: World, target: str, params: dict[str, Any]) -> None:
    """The service reads its first dependency address from a ConfigMap (``<target>-config``)."""
    hit = _need_addr(world, target)
    world.store.create({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": config_name(target), "namespace": world.namespace,
                                     "labels": {world.app.label_key: target}},
                        "data": {hit["name"]: hit["value"], "LOG_LEVEL": "info"}})

    def change(d: dict[str, Any]) -> None:
        for e in container(d)["env"]:
            if e["name"] == hit["name"]:
                e.pop("value")
                e["valueFrom"] = {"configMapKeyRef": {"name": config_name(target), "key": hit["name"]}}
    patch_deployment(world, target, change)


def _config_key(world: World, target: str) -> tuple[dict[str, Any], str]:
    cm = get(world, "ConfigMap", config_name(target))
    key = next(k for k in cm["data"] if k.endswith("_ADDR"))
    return cm, key


@ops_fault(CATALOGUE, "configmap_key_edited",
           "The ConfigMap the service reads was edited to a wrong port, then the service was restarted.",
           "app", "configuration", system_level="Application", fault_type="Misconfiguration",
           stage=_stage_config)
def _configmap_edited(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    cm, key = _config_key(world, target)
    original = cm["data"][key]
    cm["data"][key] = original.rpartition(":")[0] + ":" + str(int(original.rpartition(":")[2]) + 1000)
    world.store.update(cm)
    rollout_restart(world, target)
    return {"configmap": cm["metadata"]["name"], "original": {"key": key, "value": original}}


@ops_fault(CATALOGUE, "configmap_key_deleted",
           "A key the service reads was removed from its ConfigMap, then the service was restarted.",
           "app", "configuration", system_level="Application", fault_type="Misconfiguration",
           stage=_stage_config)
def _configmap_key_deleted(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    cm, key = _config_key(world, target)
    original = cm["data"].pop(key)
    world.store.update(cm)
    delete_pods(world, target)
    return {"configmap": cm["metadata"]["name"], "original": {"key": key, "value": original}}


def secret_name(world: World, target: str) -> str:
    return f"{world.app.components[target]['mongo']}-credentials"


def _stage_secret(world: World, target: str, params: dict[str, Any]) -> None:
    """The service takes its database password from a Secret (``<database>-credentials``)."""
    if not world.app.components[target].get("mongo"):
        raise ValueError(f"faults[].target {target!r} uses no database; choose one that does "
                         f"(geo, rate, profile, recommendation, user, reservation)")
    world.store.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": secret_name(world, target), "namespace": world.namespace},
                        "data": {"password": base64.b64encode(
                            world.app.app_credentials.get("pwd", "").encode()).decode()}})

    def change(d: dict[str, Any]) -> None:
        container(d)["env"].append({"name": "MONGO_PASSWORD", "valueFrom": {
            "secretKeyRef": {"name": secret_name(world, target), "key": "password"}}})
    patch_deployment(world, target, change)


@ops_fault(CATALOGUE, "secret_missing", "The Secret holding the service's database password was deleted.",
           "app", "configuration", system_level="Application", fault_type="Authentication Issue",
           stage=_stage_secret)
def _secret_missing(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    name = secret_name(world, target)
    secret = get(world, "Secret", name)
    world.store.delete("Secret", name, world.namespace)
    delete_pods(world, target)
    return {"secret": name, "original": {"data": secret.get("data")}}


# --- probes and lifecycle -------------------------------------------------------------------------
@ops_fault(CATALOGUE, "liveness_probe_wrong_port", "A liveness probe checks a port the process does not serve.",
           "any", "probes", params={"port": "probed port (default 9999)"}, defaults={"port": 9999},
           system_level="Application", fault_type="Misconfiguration")
def _liveness(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    def change(d: dict[str, Any]) -> None:
        container(d)["livenessProbe"] = {"tcpSocket": {"port": int(params["port"])}, "initialDelaySeconds": 5,
                                         "periodSeconds": 10, "failureThreshold": 3}
    before = patch_deployment(world, target, change)
    return {"original": {"livenessProbe": before.get("livenessProbe")}}


@ops_fault(CATALOGUE, "command_typo", "The container's command was patched with a misspelt binary name.",
           "app", "probes", system_level="Application", fault_type="Misconfiguration")
def _command_typo(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    def change(d: dict[str, Any]) -> None:
        c = container(d)
        c["command"] = [typo(c["command"][0])]
    before = patch_deployment(world, target, change)
    return {"original": {"command": before.get("command")}}


@ops_fault(CATALOGUE, "poststart_hook_failure", "A postStart hook runs a script the image does not contain.",
           "any", "probes", params={"path": "hook command (default /opt/hooks/warm-cache.sh)"},
           defaults={"path": "/opt/hooks/warm-cache.sh"}, system_level="Application", fault_type="Misconfiguration")
def _poststart(world: World, target: str, params: dict[str, Any]) -> dict[str, Any]:
    def change(d: dict[str, Any]) -> None:
        container(d)["lifecycle"] = {"postStart": {"exec": {"command": [str(params["path"])]}}}
    before = patch_deployment(world, target, change)
    return {"original": {"lifecycle": before.get("lifecycle")}}
