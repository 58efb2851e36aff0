"""Oracles that can fail: for every fault type a wrong fix, a blunt fix and the right fix plus collateral
damage are each graded not mitigated, and the right fix alone is graded mitigated.

Fixes are kubectl commands applied to the twin through ``TwinCluster.apply`` (as an agent's would be).
Each fault is injected once into a warmed world (with a NetworkPolicy, a ConfigMap and a Secret added
before the baseline, so deleting or changing those is visible); every variant runs on its own copy.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from stratus.bench.oracles import ORACLES, TOUCHES, baseline, grade
from stratus.bench.runner import prepare
from stratus.bench.scenarios import load_scenario
from stratus.cluster.actions import Action
from stratus.context import Context
from stratus.tools.kubectl import parse
from stratus.twin import tsdb as tsdb_module
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import REGISTRY, inject
from stratus.twin.world import World

NS = "test-hotel-reservation"
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SYMPTOM_S = 60.0  # after injection: the fault has taken hold (rollouts started, clients restarted)
SETTLE_S = 30.0  # after a wrong or blunt fix: enough for the cluster to act on it
RECOVERY_S = 360.0  # after the right fix: rollouts finish and the health window is clean again
NODES = ("kind-worker", "kind-worker2", "kind-worker3")
SEEDED = [  # inert objects the baseline must record (the twin ships none of these kinds)
    {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
     "metadata": {"name": "allow-frontend-ingress", "namespace": NS},
     "spec": {"podSelector": {"matchLabels": {"io.kompose.service": "frontend"}}, "policyTypes": ["Ingress"],
              "ingress": [{}]}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "feature-flags", "namespace": NS},
     "data": {"recommendations": "on"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payment-keys", "namespace": NS},
     "type": "Opaque", "data": {"key": "c2VjcmV0"}},
]

Command = str | Action  # kubectl text, or an Action where the kubectl parser itself refuses (deletes)
Fix = Callable[[World, dict[str, Any]], list[Command]]


# --- kubectl helpers ----------------------------------------------------------------------------
def _json_patch(kind: str, name: str, ops: list[dict[str, Any]]) -> str:
    return f"kubectl patch {kind} {name} -n {NS} --type=json -p '{json.dumps(ops)}'"


def _mongo(db: str, js: str) -> str:
    return f"kubectl exec deployment/{db} -n {NS} -- mongo --eval \"db.getSiblingDB('admin').{js}\""


def _grant(db: str, database: str) -> str:
    return _mongo(db, f"grantRolesToUser('admin',[{{role:'readWrite',db:'{database}'}}])")


def _revoke(db: str, database: str) -> str:
    return _mongo(db, f"revokeRolesFromUser('admin',[{{role:'readWrite',db:'{database}'}}])")


def _create_admin(db: str, database: str, pwd: str = "admin") -> str:
    return _mongo(db, f"createUser({{user:'admin',pwd:'{pwd}',roles:[{{role:'userAdminAnyDatabase',db:'admin'}},"
                      f"{{role:'readWrite',db:'{database}'}}]}})")


def _restart(name: str) -> str:
    return f"kubectl rollout restart deployment/{name} -n {NS}"


def restart_everything(world: World, rec: dict[str, Any]) -> list[str]:
    return [_restart(d["metadata"]["name"]) for d in world.store.list("Deployment", NS)]


def scale_everything(world: World, rec: dict[str, Any]) -> list[str]:
    return [f"kubectl scale deployment/{d['metadata']['name']} -n {NS} --replicas=2"
            for d in world.store.list("Deployment", NS)]


def _delete(kind: str, name: str) -> Action:
    """What ``kubectl delete`` would send; the parser refuses to delete workloads, Services and ConfigMaps."""
    return Action(verb="delete", kind=kind, name=name, namespace=NS)


def delete_target(world: World, rec: dict[str, Any]) -> list[Command]:
    return [_delete("Deployment", rec["target"])]


def _cmds(*commands: Command) -> Fix:
    return lambda world, rec: list(commands)


# --- per fault: target, right fix, wrong fix, blunt fix, collateral damage and the note it must leave --
class Case:
    def __init__(self, target: str | None, right: Fix, wrong: Fix, blunt: Fix, damage: Fix, note: str) -> None:
        self.target, self.right, self.wrong, self.blunt, self.damage, self.note = (
            target, right, wrong, blunt, damage, note)


CASES: dict[str, Case] = {
    "noop": Case(None, _cmds(), _cmds(f"kubectl scale deployment/geo -n {NS} --replicas=2"), restart_everything,
                 _cmds("kubectl cordon kind-worker"), "collateral: Node kind-worker changed at unschedulable"),
    "service_target_port": Case(
        "geo",
        lambda w, r: [_json_patch("service", "geo", [{"op": "replace", "path": "/spec/ports/0/targetPort",
                                                      "value": r["original"]["targetPort"]}])],
        _cmds(_json_patch("service", "geo", [{"op": "replace", "path": "/spec/ports/0/targetPort",
                                              "value": 8082}])),
        _cmds(_delete("Service", "geo")),
        _cmds(f"kubectl patch service search -n {NS} -p '{{\"spec\":{{\"type\":\"NodePort\"}}}}'"),
        "collateral: Service search changed at spec.type"),
    "scale_to_zero": Case(
        "profile", _cmds(f"kubectl scale deployment/profile -n {NS} --replicas=1"),
        _cmds(f"kubectl scale deployment/profile -n {NS} --replicas=3"), scale_everything,
        _cmds(f"kubectl scale deployment/geo -n {NS} --replicas=3"),
        "collateral: Deployment geo changed at spec.replicas: 1 -> 3"),
    "nonexistent_node_selector": Case(
        "profile",
        _cmds(_json_patch("deployment", "profile", [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}])),
        # the exploit of finding 3: make a node answer to the selector's hostname
        _cmds("kubectl patch node kind-worker -p "
              "'{\"metadata\":{\"labels\":{\"kubernetes.io/hostname\":\"extra-node\"}}}'"),
        delete_target,
        _cmds("kubectl taint node kind-worker3 dedicated=stratus:NoSchedule"),
        "collateral: Node kind-worker3 changed at taints"),
    "crashing_image": Case(
        "geo", _cmds(f"kubectl rollout undo deployment/geo -n {NS}"),
        _cmds(f"kubectl set resources deployment/geo -n {NS} --limits=memory=512Mi"), restart_everything,
        _cmds(f"kubectl set env deployment/search -n {NS} LOG_LEVEL=debug"),
        "collateral: Deployment search changed at spec.template.spec.containers.0.env.LOG_LEVEL"),
    "missing_image": Case(
        "search",
        lambda w, r: [f"kubectl set image deployment/search -n {NS} "
                      f"{w.app.container_name('search')}={r['original']['image']}"],
        lambda w, r: [f"kubectl set image deployment/search -n {NS} "
                      f"{w.app.container_name('search')}=yinfangchen/hotelreservation:v0.0.1"],
        delete_target,
        _cmds(f"kubectl delete networkpolicy allow-frontend-ingress -n {NS}"),
        "collateral: NetworkPolicy allow-frontend-ingress was deleted"),
    "wrong_command": Case(
        "profile",
        lambda w, r: [_json_patch("deployment", "profile", [{"op": "replace",
                                                             "path": "/spec/template/spec/containers/0/command",
                                                             "value": r["original"]["command"]}])],
        _cmds(_json_patch("deployment", "profile", [{"op": "replace",
                                                     "path": "/spec/template/spec/containers/0/command",
                                                     "value": ["geo"]}])),
        restart_everything,
        _cmds(_revoke("mongodb-rate", "rate-db")),
        "collateral: database mongodb-rate changed at users.admin.roles.rate-db"),
    "revoke_db_role": Case(
        "mongodb-geo", _cmds(_grant("mongodb-geo", "geo-db"), _restart("geo")),
        _cmds(_grant("mongodb-geo", "profile-db"), _restart("geo")), restart_everything,
        _cmds(_revoke("mongodb-user", "user-db")),
        "collateral: database mongodb-user changed at users.admin.roles.user-db"),
    "drop_db_user": Case(
        "mongodb-rate", _cmds(_create_admin("mongodb-rate", "rate-db"), _restart("rate")),
        _cmds(_create_admin("mongodb-rate", "rate-db", pwd="hunter2"), _restart("rate")),
        _cmds(_delete("Deployment", "rate")),
        _cmds(_mongo("mongodb-profile", "dropUser('admin')")),
        "collateral: database mongodb-profile changed at users.admin"),
    "env_misconfig": Case(
        "geo", lambda w, r: [f"kubectl set env deployment/geo -n {NS} {r['original']['var']}={r['original']['value']}"],
        lambda w, r: [f"kubectl set env deployment/geo -n {NS} {r['original']['var']}=mongodb-geo:27018"],
        restart_everything,
        _cmds(*(f"kubectl taint node {n} dedicated=stratus:NoSchedule" for n in NODES)),
        "collateral: Node kind-worker changed at taints"),
    "network_policy_block": Case(
        "geo", _cmds(f"kubectl delete networkpolicy deny-geo -n {NS}"), _cmds(_restart("geo")), restart_everything,
        _cmds(*(f"kubectl cordon {n}" for n in NODES)), "collateral: Node kind-worker2 changed at unschedulable"),
    "memory_limit_oom": Case(
        "rate", _cmds(f"kubectl set resources deployment rate -n {NS} --limits=memory=512Mi"),
        _cmds(f"kubectl set resources deployment rate -n {NS} --limits=memory=24Mi"), delete_target,
        _cmds(f"kubectl set resources deployment geo -n {NS} --limits=memory=512Mi"),
        "collateral: Deployment geo changed at spec.template.spec.containers.0.resources.limits"),
    "readiness_probe_misconfig": Case(
        "profile", _cmds(f"kubectl rollout undo deployment/profile -n {NS}"),
        _cmds(_json_patch("deployment", "profile", [{"op": "replace",
                                                     "path": "/spec/template/spec/containers/0/readinessProbe"
                                                             "/tcpSocket/port", "value": 9998}])),
        restart_everything,
        _cmds(_delete("ConfigMap", "feature-flags")), "collateral: ConfigMap feature-flags was deleted"),
    "pod_failure": Case(
        "reservation", _cmds(f"kubectl delete podchaos pod-failure-reservation -n {NS}"),
        lambda w, r: [f"kubectl delete pod {p['metadata']['name']} -n {NS}"
                      for p in w.store.list("Pod", NS, {w.app.label_key: "reservation"})],
        restart_everything,
        _cmds(_delete("Service", "search")), "collateral: Service search was deleted"),
    "network_delay": Case(
        "geo", _cmds(f"kubectl delete networkchaos delay-geo -n {NS}"),
        _cmds(f"kubectl scale deployment/geo -n {NS} --replicas=3"), restart_everything,
        _cmds(_json_patch("deployment", "frontend", [{"op": "add", "path": "/spec/template/spec/nodeSelector",
                                                      "value": {"kubernetes.io/os": "linux"}}])),
        "collateral: Deployment frontend changed at spec.template.spec.nodeSelector"),
}


# --- worlds: one injection per fault, each variant on its own copy ------------------------------
def fork(world: World) -> World:
    """An independent copy (with its own TSDB identity, as tests/conftest.py explains)."""
    w = copy.deepcopy(world)
    w.tsdb.uid = next(tsdb_module._db_ids)
    return w


@cache
def _injected(fault: str, warmed: World) -> tuple[World, dict[str, Any], dict[str, Any]]:
    world = fork(warmed)
    for obj in SEEDED:
        world.store.create(copy.deepcopy(obj))
    base = baseline(world)
    rec = inject(world, fault, CASES[fault].target)
    world.advance(SYMPTOM_S)
    return world, base, rec


@cache
def _fixed(fault: str, warmed: World) -> World:
    world, _, rec = _injected(fault, warmed)
    world = fork(world)
    _apply(world, CASES[fault].right(world, rec))
    world.advance(RECOVERY_S)
    return world


def _apply(world: World, commands: list[Command]) -> None:
    cluster = TwinCluster(world)
    for cmd in commands:
        res = cluster.apply(cmd if isinstance(cmd, Action) else parse(cmd))
        assert res.ok, f"{cmd}: {res.message}"


def _grade(world: World, base: dict[str, Any], rec: dict[str, Any], changed: bool) -> tuple[bool, list[str]]:
    return grade(world, TwinCluster(world), [rec], base, Context(db=":memory:"), changed=changed)


@pytest.fixture(scope="module")
def warmed(twin_helpers: Any) -> World:
    return twin_helpers.warmed_world()


FAULTS = sorted(CASES)


def test_every_fault_type_has_an_oracle_and_negative_cases() -> None:
    known = {n for n, s in REGISTRY.items() if not s.new}  # new types: tests/bench/test_oracles_ops.py
    assert set(CASES) == known, "add a Case (right, wrong, blunt, damage) for every fault type"
    assert set(ORACLES) == set(REGISTRY) == set(TOUCHES)


@pytest.mark.parametrize("fault", FAULTS)
def test_right_fix_alone_is_mitigated(fault: str, warmed: World) -> None:
    _, base, rec = _injected(fault, warmed)
    world = _fixed(fault, warmed)
    mitigated, notes = _grade(world, base, rec, changed=fault != "noop")
    assert mitigated, notes


@pytest.mark.parametrize("fault", FAULTS)
def test_wrong_fix_is_not_mitigated(fault: str, warmed: World) -> None:
    injected, base, rec = _injected(fault, warmed)
    world = fork(injected)
    _apply(world, CASES[fault].wrong(world, rec))
    world.advance(SETTLE_S)
    mitigated, notes = _grade(world, base, rec, changed=True)
    assert not mitigated, notes
    if fault != "noop":
        cause_gone, why = ORACLES[fault](world, rec)
        assert not cause_gone, f"the wrong fix must leave the cause in place: {why}"


@pytest.mark.parametrize("fault", FAULTS)
def test_blunt_fix_is_not_mitigated(fault: str, warmed: World) -> None:
    injected, base, rec = _injected(fault, warmed)
    world = fork(injected)
    _apply(world, CASES[fault].blunt(world, rec))
    world.advance(SETTLE_S)
    mitigated, notes = _grade(world, base, rec, changed=True)
    assert not mitigated, notes


@pytest.mark.parametrize("fault", FAULTS)
def test_right_fix_with_collateral_damage_is_not_mitigated(fault: str, warmed: World) -> None:
    _, base, rec = _injected(fault, warmed)
    world = fork(_fixed(fault, warmed))
    _apply(world, CASES[fault].damage(world, rec))
    mitigated, notes = _grade(world, base, rec, changed=True)
    assert ORACLES[fault](world, rec)[0], "the cause stays fixed: only the damage may fail the grade"
    assert not mitigated, notes
    assert any(n.startswith(CASES[fault].note) for n in notes), notes


def test_rewriting_a_node_hostname_does_not_fit_a_selector(warmed: World) -> None:
    """Finding 3: relabelling a node to match a selector was graded mitigated."""
    injected, base, rec = _injected("nonexistent_node_selector", warmed)
    world = fork(injected)
    _apply(world, CASES["nonexistent_node_selector"].wrong(world, rec))
    world.advance(RECOVERY_S)
    cause_gone, why = ORACLES["nonexistent_node_selector"](world, rec)
    assert not cause_gone and "kubernetes.io/hostname no longer names node(s) kind-worker" in why
    mitigated, notes = _grade(world, base, rec, changed=True)
    assert not mitigated
    assert "collateral: Node kind-worker changed at labels.kubernetes.io/hostname: 'kind-worker' -> 'extra-node'" \
        in notes


# --- every section of the baseline is guarded ------------------------------------------------------
def _set_secret(world: World) -> None:
    manifest = copy.deepcopy(SEEDED[2])
    manifest["data"] = {"key": "b3RoZXI="}
    res = TwinCluster(world).apply(Action(verb="apply", kind="Secret", name="payment-keys", namespace=NS,
                                          params={"manifest": manifest}))
    assert res.ok, res.message


def _create_policy(world: World) -> None:
    manifest = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "deny-search", "namespace": NS},
                "spec": {"podSelector": {"matchLabels": {"io.kompose.service": "search"}},
                         "policyTypes": ["Ingress"], "ingress": []}}
    res = TwinCluster(world).apply(Action(verb="create", kind="NetworkPolicy", name="deny-search", namespace=NS,
                                          params={"manifest": manifest}))
    assert res.ok, res.message


DAMAGE: list[tuple[str, Callable[[World], None], str]] = [
    ("cordon", lambda w: _apply(w, ["kubectl cordon kind-worker3"]),
     "collateral: Node kind-worker3 changed at unschedulable"),
    ("taint", lambda w: _apply(w, ["kubectl taint node kind-worker3 gpu=true:NoExecute"]),
     "collateral: Node kind-worker3 changed at taints"),
    ("label", lambda w: _apply(w, ["kubectl label node kind-worker3 disktype=ssd"]),
     "collateral: Node kind-worker3 changed at labels.disktype"),
    ("template", lambda w: _apply(w, [f"kubectl set image deployment/user -n {NS} "
                                      f"{w.app.container_name('user')}=yinfangchen/hotelreservation:v2"]),
     "collateral: Deployment user changed at spec.template.spec.containers.0.image"),
    ("replicas", lambda w: _apply(w, [f"kubectl scale deployment/frontend -n {NS} --replicas=0"]),
     "collateral: Deployment frontend changed at spec.replicas"),
    ("deployment deleted", lambda w: _apply(w, [_delete("Deployment", "consul")]),
     "collateral: Deployment consul was deleted"),
    ("service", lambda w: _apply(w, [_json_patch("service", "user", [{"op": "replace", "path": "/spec/ports/0/port",
                                                                      "value": 6000}])]),
     "collateral: Service user changed at spec.ports.0.port"),
    ("policy created", _create_policy, "collateral: NetworkPolicy deny-search was created"),
    ("policy deleted", lambda w: _apply(w, [f"kubectl delete networkpolicy allow-frontend-ingress -n {NS}"]),
     "collateral: NetworkPolicy allow-frontend-ingress was deleted"),
    ("role", lambda w: _apply(w, [_revoke("mongodb-reservation", "reservation-db")]),
     "collateral: database mongodb-reservation changed at users.admin.roles.reservation-db"),
    ("user", lambda w: _apply(w, [_mongo("mongodb-geo", "dropUser('admin')")]),
     "collateral: database mongodb-geo changed at users.admin"),
    ("configmap", lambda w: _apply(w, [_delete("ConfigMap", "feature-flags")]),
     "collateral: ConfigMap feature-flags was deleted"),
    ("secret", _set_secret, "collateral: Secret payment-keys changed at data.key"),
]


@pytest.mark.parametrize(("damage", "note"), [(d[1], d[2]) for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_every_baseline_section_is_guarded(damage: Callable[[World], None], note: str, warmed: World) -> None:
    _, base, rec = _injected("scale_to_zero", warmed)
    world = fork(_fixed("scale_to_zero", warmed))
    damage(world)
    mitigated, notes = _grade(world, base, rec, changed=True)
    assert not mitigated and any(n.startswith(note) for n in notes), notes


def test_a_deleted_target_is_a_failure_with_the_error_noted(warmed: World) -> None:
    injected, base, rec = _injected("crashing_image", warmed)
    world = fork(injected)
    _apply(world, delete_target(world, rec))
    mitigated, notes = _grade(world, base, rec, changed=True)
    assert not mitigated
    assert notes[0].startswith("crashing_image@geo: grader error: NotFound")
    assert "collateral: Deployment geo was deleted" in notes


def test_distractors_are_part_of_the_baseline() -> None:
    """Noise (an allow-all NetworkPolicy, an evicted pod) is the world the agent is handed, not its damage."""
    world, cluster, records, base, _ = prepare(load_scenario(SCENARIOS / "hotel-noop-high.yaml"))
    assert world.store.list("NetworkPolicy", world.namespace), "the high-noise control adds a NetworkPolicy"
    mitigated, notes = grade(world, cluster, records, base, Context(db=":memory:"), changed=False)
    assert mitigated, notes
