"""Every operator-mistake fault: its symptom shows, a restart does not pass its oracle, the right fix does.

The right fix is made as an operator would make it (edit the object back, re-create what was deleted);
the wrong fix is what a restart-happy agent does (rollout restart and delete the target's pods), plus
a plausible wrong fix specific to some faults. Each case is one twin run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from stratus.bench.oracles import ORACLES, TOUCHES, grade
from stratus.bench.runner import prepare
from stratus.bench.scenarios import parse_scenario
from stratus.cluster.mutate import RESTARTED_AT
from stratus.context import Context
from stratus.tools.health import measure
from stratus.twin.faults import REGISTRY
from stratus.twin.faults_capacity import STORAGE_CLASS
from stratus.twin.world import World

Fix = Callable[[World, dict[str, Any]], None]


def _update(world: World, kind: str, name: str, fn: Callable[[dict[str, Any]], None]) -> None:
    obj = copy.deepcopy(world.store.get(kind, name, world.namespace if kind != "Node" else None))
    fn(obj)
    world.store.update(obj)


def _container(d: dict[str, Any]) -> dict[str, Any]:
    return d["spec"]["template"]["spec"]["containers"][0]


def _restart(world: World, target: str) -> None:
    if not world.store.exists("Deployment", target, world.namespace):
        return
    _update(world, "Deployment", target, lambda d: d["spec"]["template"].setdefault("metadata", {}).setdefault(
        "annotations", {}).update({RESTARTED_AT: str(world.clock.now)}))


def _delete_pods(world: World, target: str) -> None:
    for pod in world.store.list("Pod", world.namespace, {world.app.label_key: target}):
        world.delete_pod(pod)


def _create(world: World, kind: str, name: str, spec_or_body: dict[str, Any], api: str = "v1") -> None:
    body = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": world.namespace},
            **spec_or_body}
    world.store.create(body)


def _set_env(world: World, rec: dict[str, Any]) -> None:
    def fix(d: dict[str, Any]) -> None:
        for e in _container(d)["env"]:
            if e["name"] == rec["original"]["var"]:
                e["value"] = rec["original"]["value"]
    _update(world, "Deployment", rec["target"], fix)


def _recreate_service(world: World, rec: dict[str, Any]) -> None:
    if world.store.exists("Service", rec["target"], world.namespace):
        world.store.delete("Service", rec["target"], world.namespace)
    _create(world, "Service", rec["target"], {"metadata": {"name": rec["target"], "namespace": world.namespace,
                                                           "labels": {world.app.label_key: rec["target"]}},
                                              "spec": copy.deepcopy(rec["original"]["spec"])})


def _config_fix(world: World, rec: dict[str, Any]) -> None:
    _update(world, "ConfigMap", rec["configmap"],
            lambda cm: cm["data"].update({rec["original"]["key"]: rec["original"]["value"]}))
    _restart(world, rec["target"])


def _nodes(world: World, fn: Callable[[dict[str, Any]], None]) -> None:
    for n in world.store.list("Node"):
        _update(world, "Node", n["metadata"]["name"], fn)


def _claim(world: World, rec: dict[str, Any]) -> None:
    if world.store.exists("PersistentVolumeClaim", rec["claim"], world.namespace):
        world.store.delete("PersistentVolumeClaim", rec["claim"], world.namespace)
    _create(world, "PersistentVolumeClaim", rec["claim"], {"spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": STORAGE_CLASS,
        "resources": {"requests": {"storage": "1Gi"}}}})


def _pop(field: str) -> Fix:
    return lambda w, rec: _update(w, "Deployment", rec["target"], lambda d: _container(d).pop(field, None))


RIGHT: dict[str, tuple[str, Fix]] = {
    "service_selector_typo": ("geo", lambda w, rec: _update(
        w, "Service", rec["target"], lambda s: s["spec"].update(selector=rec["original"]["selector"]))),
    "service_deleted": ("profile", _recreate_service),
    "env_wrong_host": ("search", _set_env),
    "service_port_changed": ("rate", lambda w, rec: _update(
        w, "Service", rec["target"], lambda s: s["spec"]["ports"][0].update(port=rec["original"]["port"]))),
    "db_service_wrong_port": ("mongodb-geo", _recreate_service),
    "deployment_deleted": ("memcached-profile", lambda w, rec: _create(w, "Deployment", rec["target"], {
        "metadata": {"name": rec["target"], "namespace": w.namespace,
                     "labels": {w.app.label_key: rec["target"]}},
        "spec": {"replicas": rec["original"]["replicas"],
                 "selector": {"matchLabels": {w.app.label_key: rec["target"]}},
                 "template": copy.deepcopy(rec["original"]["template"])}}, "apps/v1")),
    "configmap_key_edited": ("frontend", _config_fix),
    "configmap_key_deleted": ("geo", _config_fix),
    "secret_missing": ("user", lambda w, rec: _create(w, "Secret", rec["secret"], {
        "type": "Opaque", "data": rec["original"]["data"]})),
    "liveness_probe_wrong_port": ("recommendation", _pop("livenessProbe")),
    "command_typo": ("reservation", lambda w, rec: _update(
        w, "Deployment", rec["target"], lambda d: _container(d).update(command=rec["original"]["command"]))),
    "poststart_hook_failure": ("search", _pop("lifecycle")),
    "request_too_large": ("geo", lambda w, rec: _update(
        w, "Deployment", rec["target"], lambda d: _container(d)["resources"].update(
            requests=rec["original"]["requests"]))),
    "node_taint": ("profile", lambda w, rec: _nodes(w, lambda n: n["spec"].update(taints=[
        t for t in n["spec"].get("taints") or [] if t["key"] != rec["taint"]["key"]]))),
    "node_cordon": ("rate", lambda w, rec: _nodes(w, lambda n: n["spec"].pop("unschedulable", None))),
    "affinity_to_nothing": ("user", lambda w, rec: _update(
        w, "Deployment", rec["target"], lambda d: d["spec"]["template"]["spec"].pop("affinity"))),
    "resource_quota_exhausted": ("search", lambda w, rec: w.store.delete("ResourceQuota", rec["quota"], w.namespace)),
    "limit_range_default_oom": ("geo", lambda w, rec: (w.store.delete("LimitRange", rec["limitrange"], w.namespace),
                                                       _restart(w, rec["target"]))),
    "pvc_wrong_storage_class": ("mongodb-user", _claim),
    "pvc_deleted": ("mongodb-rate", _claim),
}

# plausible wrong fixes beyond a restart: they remove the symptom's trigger or work around it elsewhere
PLAUSIBLE_WRONG: dict[str, Fix] = {
    "node_taint": lambda w, rec: _update(w, "Deployment", rec["target"], lambda d: d["spec"]["template"]["spec"]
                                         .update(tolerations=[{"operator": "Exists"}])),
    "service_selector_typo": lambda w, rec: w.store.delete("Service", rec["target"], w.namespace),
    "pvc_deleted": lambda w, rec: w.store.delete("Deployment", rec["target"], w.namespace),
    "db_service_wrong_port": lambda w, rec: [_restart(w, c) for c in ("geo",)],
}


def test_every_new_fault_has_a_family_an_oracle_and_a_case_here() -> None:
    new = {n for n, s in REGISTRY.items() if s.new}
    assert len(new) >= 16
    assert new == set(RIGHT)
    assert all(REGISTRY[n].family for n in REGISTRY), "every fault type declares its family"
    assert len({REGISTRY[n].family for n in new}) >= 7
    assert new <= set(ORACLES) and new <= set(TOUCHES)


def _run(fault: str, target: str) -> tuple[Any, ...]:
    sc = parse_scenario({"id": f"t-{fault}", "app": "hotel-reservation", "seed": 5,
                         "faults": [{"type": fault, "target": target}]})
    return prepare(sc)


@pytest.mark.parametrize("fault", sorted(RIGHT))
def test_restart_fails_and_the_right_fix_passes(fault: str) -> None:
    target, fix = RIGHT[fault]
    world, cluster, records, base, _ = _run(fault, target)
    ctx = Context()
    health = measure(cluster, ctx, world.namespace)
    assert health.unhealthy, f"{fault}: the fault shows no symptom"
    _restart(world, target)
    _delete_pods(world, target)
    world.advance(240)
    ok, notes = grade(world, cluster, records, base, ctx, changed=True)
    assert not ok, f"{fault}: a restart passed the oracle: {notes}"
    fix(world, records[0])
    world.advance(600)  # a client in CrashLoopBackOff waits out its back-off (up to 300 s) first
    ok, notes = grade(world, cluster, records, base, ctx, changed=True)
    assert ok, f"{fault}: the right fix failed the oracle: {notes}"


@pytest.mark.parametrize("fault", sorted(PLAUSIBLE_WRONG))
def test_plausible_wrong_fixes_fail(fault: str) -> None:
    target, _ = RIGHT[fault]
    world, cluster, records, base, _ = _run(fault, target)
    PLAUSIBLE_WRONG[fault](world, records[0])
    world.advance(300)
    ok, notes = grade(world, cluster, records, base, Context(), changed=True)
    assert not ok, f"{fault}: a wrong fix passed: {notes}"
