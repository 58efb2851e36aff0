"""Every catalogued fault produces its symptoms in the twin, and its right fix removes them.

Symptoms are never scripted: each case checks what an SRE would see (alerts, health H, pod and
endpoint states, events, log lines), then applies the fix from reference/benchmarks.md §4 as a kubectl
command through ``TwinCluster.apply`` and checks that the symptoms clear for the same reason and that
the bench oracle grades the incident mitigated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from stratus.bench.oracles import ORACLES, baseline, grade
from stratus.tools.health import measure
from stratus.tools.kubectl import parse
from stratus.twin.faults import REGISTRY, FaultError, inject

NS = "test-hotel-reservation"
SYMPTOM_S = 300.0  # simulated time after injection before symptoms are checked
RECOVERY_S = 360.0  # after the fix: rollouts finish and alert rules' look-back windows pass


# --- the right fixes (reference/benchmarks.md §4), as kubectl commands ------------------------------
def _json_patch(ops: list[dict[str, Any]]) -> str:
    return "'" + json.dumps(ops) + "'"


def _db_clients(world: Any, db: str) -> list[str]:
    return [c for c, spec in world.app.components.items() if spec.get("mongo") == db]


def _mongo(target: str, js: str) -> str:
    return (f"kubectl exec deploy/{target} -n {NS} -- mongo admin -u root -p root "
            f"--authenticationDatabase admin --eval \"{js}\"")


def right_fix(world: Any, rec: dict[str, Any]) -> list[str]:
    t, o = rec["target"], rec.get("original", {})
    kind = rec["type"]
    if kind == "service_target_port":
        return [f"kubectl patch svc {t} -n {NS} --type=json -p " + _json_patch(
            [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": o["targetPort"]}])]
    if kind == "scale_to_zero":
        return [f"kubectl scale deployment {t} -n {NS} --replicas=1"]
    if kind == "nonexistent_node_selector":
        return [f"kubectl patch deployment {t} -n {NS} --type=json -p " + _json_patch(
            [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}])]
    if kind == "crashing_image":
        return [f"kubectl rollout undo deployment/{t} -n {NS}"]
    if kind == "missing_image":
        return [f"kubectl set image deployment/{t} -n {NS} {world.app.container_name(t)}={o['image']}"]
    if kind == "wrong_command":
        return [f"kubectl patch deployment {t} -n {NS} --type=json -p " + _json_patch(
            [{"op": "replace", "path": "/spec/template/spec/containers/0/command", "value": o["command"]}])]
    if kind == "revoke_db_role":
        grant = _mongo(t, f"db.grantRolesToUser('{o['user']}',[{{role:'readWrite',db:'{o['db']}'}}])")
        return [grant] + [f"kubectl rollout restart deployment/{c} -n {NS}" for c in _db_clients(world, t)]
    if kind == "drop_db_user":
        create = _mongo(t, "db.createUser({user:'admin',pwd:'admin',roles:[{role:'userAdminAnyDatabase',"
                           f"db:'admin'}},{{role:'readWrite',db:'{o['db']}'}}]}})")
        return [create] + [f"kubectl rollout restart deployment/{c} -n {NS}" for c in _db_clients(world, t)]
    if kind == "env_misconfig":
        return [f"kubectl set env deployment/{t} -n {NS} {o['var']}={o['value']}"]
    if kind == "network_policy_block":
        return [f"kubectl delete networkpolicy {rec['policy']} -n {NS}"]
    if kind == "memory_limit_oom":
        return [f"kubectl set resources deployment {t} -n {NS} --limits=memory=512Mi"]
    if kind == "readiness_probe_misconfig":
        return [f"kubectl rollout undo deployment/{t} -n {NS}"]
    if kind in ("pod_failure", "network_delay"):
        return [f"kubectl delete {rec['chaos']['kind'].lower()} {rec['chaos']['name']} -n {NS}"]
    raise AssertionError(f"no right fix written for fault {kind!r}: add one to this table")


# --- symptom checks: what an SRE would see, per fault ------------------------------------------------
def _waiting_reasons(pods: list[dict[str, Any]]) -> set[str]:
    return {(cs.get("state", {}).get("waiting") or {}).get("reason")
            for p in pods for cs in p.get("status", {}).get("containerStatuses", [])} - {None}


def _ready(p: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))


def _endpoints(world: Any, svc: str) -> tuple[list[Any], list[Any], set[int]]:
    ep = world.store.get("Endpoints", svc, world.namespace)
    ready = [a for s in ep.get("subsets") or [] for a in s.get("addresses") or []]
    not_ready = [a for s in ep.get("subsets") or [] for a in s.get("notReadyAddresses") or []]
    ports = {int(p["port"]) for s in ep.get("subsets") or [] for p in s.get("ports", [])}
    return ready, not_ready, ports


def _warning_events(cluster: Any, reason: str) -> list[str]:
    return [e["message"] for e in cluster.events(NS) if e.get("reason") == reason and e.get("type") == "Warning"]


def check_target_port(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    ready, _, ports = _endpoints(w, rec["target"])
    assert ports == {9999} and ready, "endpoints keep Ready pods but on the wrong port"
    assert all(_ready(p) for p in h.pods_of(w, rec["target"])), "nothing crashes: the pods stay Ready"


def check_scaled_to_zero(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    assert h.pods_of(w, rec["target"]) == []
    ready, _, _ = _endpoints(w, rec["target"])
    assert ready == []
    assert w.store.get("Deployment", rec["target"], NS)["status"].get("availableReplicas", 0) == 0


def check_node_selector(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    pods = h.pods_of(w, rec["target"])
    assert pods and all(p["status"]["phase"] == "Pending" and not p["spec"].get("nodeName") for p in pods)
    assert any("didn't match Pod's node affinity/selector" in m for m in _warning_events(c, "FailedScheduling"))


def check_crash_loop(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    assert "CrashLoopBackOff" in _waiting_reasons(h.pods_of(w, rec["target"]))


def check_image_pull(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    assert _waiting_reasons(h.pods_of(w, rec["target"])) & {"ErrImagePull", "ImagePullBackOff"}
    assert any("Failed to pull image" in m and rec["bad_image"] in m for m in _warning_events(c, "Failed"))


def check_wrong_command(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    pods = h.pods_of(w, rec["target"])
    assert pods and all(_ready(p) for p in pods), "a wrong binary keeps running: no crash, Ready"
    own_port = w.app.port_of(rec["target"])
    wrong_port = w.app.binaries[rec["wrong"]]["port"]
    text = h.logs_of(c, rec["target"])
    assert f"Read target port: {wrong_port}" in text and f"Read target port: {own_port}" not in text


def check_db_client_crash(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    clients = _db_clients(w, rec["target"])
    assert any("CrashLoopBackOff" in _waiting_reasons(h.pods_of(w, cl)) for cl in clients)
    assert all(_ready(p) for p in h.pods_of(w, rec["target"])), "the database itself stays healthy"


def check_oom(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    reasons = {(cs.get("lastState") or {}).get("terminated", {}).get("reason")
               for p in h.pods_of(w, rec["target"]) for cs in p["status"].get("containerStatuses", [])}
    assert "OOMKilled" in reasons


def check_probe(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    pods = h.pods_of(w, rec["target"])
    assert any(p["status"]["phase"] == "Running" and not _ready(p) for p in pods)
    _, not_ready, _ = _endpoints(w, rec["target"])
    assert not_ready, "the new pod is listed under notReadyAddresses"
    assert any(m.startswith("Readiness probe failed") for m in _warning_events(c, "Unhealthy"))


def check_netpol(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    pods = h.pods_of(w, rec["target"])
    assert pods and all(_ready(p) for p in pods), "a NetworkPolicy drops packets; pods stay Ready"
    assert w.store.exists("NetworkPolicy", rec["policy"], NS)


def check_pod_chaos(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    pods = h.pods_of(w, rec["target"])
    assert pods and not any(_ready(p) for p in pods)
    restarts = [cs["restartCount"] for p in pods for cs in p["status"]["containerStatuses"]]
    assert max(restarts) >= 1, "pod-failure swaps in a pause container: the container restarts"


def check_latency(w: Any, c: Any, h: Any, rec: dict[str, Any]) -> None:
    pods = h.pods_of(w, rec["target"])
    assert pods and all(_ready(p) for p in pods), "delay does not kill pods"


Check = Callable[[Any, Any, Any, dict[str, Any]], None]

# (fault, target, alert that must fire "Name:component", (component, log text) or None, H must drop, check)
CASES: list[tuple[str, str, str, tuple[str, str] | None, bool, Check]] = [
    ("service_target_port", "geo", "NoRequestsReceived:geo", ("search", "connect: connection refused"), True,
     check_target_port),
    ("service_target_port", "reservation", "NoRequestsReceived:reservation",
     ("frontend", "connect: connection refused"), True, check_target_port),
    ("scale_to_zero", "profile", "NoRequestsReceived:profile", ("frontend", "call to profile failed"), True,
     check_scaled_to_zero),
    ("scale_to_zero", "rate", "NoRequestsReceived:rate", ("search", "call to rate failed"), True,
     check_scaled_to_zero),
    ("nonexistent_node_selector", "user", "PodSchedulingFailure:user", None, False, check_node_selector),
    ("nonexistent_node_selector", "profile", "PodSchedulingFailure:profile", None, True, check_node_selector),
    ("crashing_image", "geo", "KubePodCrashLooping:geo", ("geo", "panic: runtime error"), False,
     check_crash_loop),
    ("crashing_image", "recommendation", "KubePodCrashLooping:recommendation",
     ("recommendation", "panic: runtime error"), False, check_crash_loop),
    ("missing_image", "search", "KubeContainerWaiting:search", None, False, check_image_pull),
    ("missing_image", "mongodb-profile", "KubeContainerWaiting:mongodb-profile", None, False, check_image_pull),
    ("wrong_command", "profile", "NoRequestsReceived:profile", ("frontend", "call to profile failed"), True,
     check_wrong_command),
    ("wrong_command", "rate", "NoRequestsReceived:rate", ("search", "call to rate failed"), True,
     check_wrong_command),
    ("revoke_db_role", "mongodb-geo", "KubePodCrashLooping:geo", ("geo", "not authorized on geo-db"), True,
     check_db_client_crash),
    ("revoke_db_role", "mongodb-user", "KubePodCrashLooping:user", ("user", "not authorized on user-db"), False,
     check_db_client_crash),
    ("drop_db_user", "mongodb-rate", "KubePodCrashLooping:rate",
     ("rate", "SASL authentication step: Authentication failed"), True, check_db_client_crash),
    ("drop_db_user", "mongodb-reservation", "KubePodCrashLooping:reservation",
     ("reservation", "SASL authentication step: Authentication failed"), True, check_db_client_crash),
    ("env_misconfig", "geo", "KubePodCrashLooping:geo", ("geo", "panic: no reachable servers"), False,
     check_crash_loop),
    ("env_misconfig", "search", "NoRequestsReceived:geo", ("search", "i/o timeout"), True, check_latency),
    ("network_policy_block", "user", "NoRequestsReceived:user", ("frontend", "i/o timeout"), False, check_netpol),
    ("network_policy_block", "geo", "NoRequestsReceived:geo", ("search", "i/o timeout"), True, check_netpol),
    ("memory_limit_oom", "rate", "KubeContainerOOMKilled:rate", None, True, check_oom),
    ("memory_limit_oom", "search", "KubeContainerOOMKilled:search", None, True, check_oom),
    ("readiness_probe_misconfig", "profile", "KubePodNotReady:profile", None, False, check_probe),
    ("readiness_probe_misconfig", "frontend", "KubePodNotReady:frontend", None, False, check_probe),
    ("pod_failure", "reservation", "KubePodNotReady:reservation", ("frontend", "call to reservation failed"),
     True, check_pod_chaos),
    ("pod_failure", "user", "KubePodNotReady:user", None, False, check_pod_chaos),
    ("network_delay", "geo", "HighRequestLatency:frontend", None, True, check_latency),
    ("network_delay", "profile", "HighRequestLatency:frontend", None, True, check_latency),
]


def test_cases_cover_every_fault_on_two_targets() -> None:
    targets: dict[str, set[str]] = {}
    for fault, target, *_ in CASES:
        targets.setdefault(fault, set()).add(target)
    # the new types' symptoms and fixes are cases of tests/bench/test_oracles_ops.py
    missing = {f for f, s in REGISTRY.items() if f != "noop" and not s.new and len(targets.get(f, set())) < 2}
    assert not missing, f"faults without two symptom/fix cases: {sorted(missing)}"
    assert set(ORACLES) >= set(REGISTRY), "every fault needs a mitigation oracle"


@pytest.mark.parametrize(("fault", "target", "alert", "log", "h_drops", "check"), CASES,
                         ids=[f"{c[0]}@{c[1]}" for c in CASES])
def test_fault_symptoms_and_right_fix(fault: str, target: str, alert: str, log: tuple[str, str] | None,
                                      h_drops: bool, check: Check, world: Any, cluster: Any, ctx: Any,
                                      twin_helpers: Any) -> None:
    h = twin_helpers
    base = baseline(world)
    healthy = measure(cluster, ctx, NS)
    assert healthy.H == pytest.approx(0.5, abs=0.005) and healthy.unhealthy == [] and not h.firing_names(world)

    rec = inject(world, fault, target)
    world.advance(SYMPTOM_S)
    sick = measure(cluster, ctx, NS)
    firing = h.firing_names(world)
    assert alert in firing, f"expected {alert} among {sorted(firing)}"
    assert sick.unhealthy, "U must name something unhealthy"
    if h_drops:
        assert sick.H < healthy.H - 0.005, f"H should drop: {healthy.H} -> {sick.H}"
    if log is not None:
        component, text = log
        assert text in h.logs_of(cluster, component), f"{component} logs should mention {text!r}"
    check(world, cluster, h, rec)
    cause_gone, why = ORACLES[fault](world, rec)
    assert not cause_gone, f"the oracle must see the fault before the fix: {why}"

    for cmd in right_fix(world, rec):
        res = cluster.apply(parse(cmd))
        assert res.ok, f"{cmd}: {res.message}"
    world.advance(RECOVERY_S)

    well = measure(cluster, ctx, NS)
    assert not h.firing_names(world), f"alerts still firing after the fix: {sorted(h.firing_names(world))}"
    assert well.unhealthy == []
    assert well.H >= healthy.H - 0.005
    assert h.all_pods_ready(world) == []
    mitigated, notes = grade(world, cluster, [rec], base, ctx, changed=True)
    assert mitigated, notes


@pytest.mark.parametrize(("fault", "target", "field"), [
    ("revoke_db_role", "geo", "needs a database"),
    ("crashing_image", "mongodb-geo", "needs an application service"),
    ("scale_to_zero", "nope", "faults[].target 'nope' is not a component"),
    ("scale_to_zero", None, "faults[].target is required"),
    ("does_not_exist", "geo", "faults[].type 'does_not_exist' is unknown"),
])
def test_inject_refuses_bad_targets(fault: str, target: str | None, field: str, world: Any) -> None:
    before = {d["metadata"]["name"]: d["spec"] for d in world.store.list("Deployment", NS)}
    with pytest.raises(FaultError, match=field.replace("[", r"\[").replace("]", r"\]")):
        inject(world, fault, target)
    assert {d["metadata"]["name"]: d["spec"] for d in world.store.list("Deployment", NS)} == before


def test_inject_refuses_unknown_params(world: Any) -> None:
    with pytest.raises(FaultError, match=r"faults\[\]\.params: unknown parameter\(s\) \['bogus'\]"):
        inject(world, "scale_to_zero", "geo", {"bogus": 1})
    assert world.store.get("Deployment", "geo", NS)["spec"]["replicas"] == 1
