"""Compound incidents on the twin: a right fix whose effect another fault masks is kept, while a change
that breaks what it touches is still undone; and a Chaos Mesh experiment reaches only the pods it selects.
"""

from __future__ import annotations

from typing import Any

import yaml
from test_attribution import NS, transaction

from stratus.tools.analyzers import View
from stratus.tools.attribution import touched_by
from stratus.tools.kubectl import parse
from stratus.twin.faults import inject


def _compound(world: Any, twin_helpers: Any) -> str:
    """search OOM-killed and the user Service's port changed; returns the command that restores the
    Service as it was before the faults."""
    service = world.store.get("Service", "user", NS)
    manifest = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "user", "namespace": NS, "labels": service["metadata"].get("labels", {})},
                "spec": {k: service["spec"][k] for k in ("selector", "ports")}}
    inject(world, "memory_limit_oom", "search")
    inject(world, "service_port_changed", "user")
    twin_helpers.advance_until_alerts(world)
    return f"kubectl apply -n {NS} -f -\n" + yaml.safe_dump(manifest, sort_keys=False)


def test_a_right_fix_that_lets_traffic_reach_another_fault_is_kept(world: Any, cluster: Any,
                                                                   twin_helpers: Any) -> None:
    tx = transaction(cluster, [_compound(world, twin_helpers)])
    assert tx["health_after"]["H"] < tx["health_before"]["H"] - tx["eps"], "H fell: search now fails more"
    assert tx["verdict"] == "commit" and tx["status"] == "committed", tx["verdict_reason"]
    assert "exposed the untouched fault(s) at search" in tx["verdict_reason"]


def test_a_change_that_takes_down_a_touched_service_is_still_undone(world: Any, cluster: Any,
                                                                    twin_helpers: Any) -> None:
    """The same compound incident; scaling user to zero instead cuts frontend's calls to it."""
    _compound(world, twin_helpers)
    tx = transaction(cluster, [f"kubectl scale deployment/user -n {NS} --replicas=0"])
    assert tx["verdict"] != "commit", tx["verdict_reason"]


def test_a_wrong_change_to_the_caller_is_still_undone(world: Any, cluster: Any, twin_helpers: Any) -> None:
    """Pointing frontend at the wrong port clears frontend's own address finding, which is no progress."""
    _compound(world, twin_helpers)
    tx = transaction(cluster, [f"kubectl set env deployment/frontend -n {NS} USER_ADDR=user:8087"])
    assert tx["verdict"] != "commit", tx["verdict_reason"]


def test_a_chaos_experiment_reaches_the_workloads_it_selects(world: Any, cluster: Any) -> None:
    inject(world, "pod_failure", "geo")
    view = View.read(cluster, NS)
    action = parse(f"kubectl delete podchaos/pod-failure-geo -n {NS}")
    assert touched_by(cluster, view, action, []) == {"geo"}
    chaos = world.store.get("PodChaos", "pod-failure-geo", NS)
    chaos["spec"]["selector"]["namespaces"] = [NS, "other"]
    assert touched_by(cluster, view, action, [chaos]) is None, "beyond the namespace its reach is unknown"


def test_an_untaint_only_admits_the_pods_it_lets_start(world: Any, cluster: Any) -> None:
    from stratus.tools.attribution import scope_of

    since = cluster.now()
    world.advance(5)
    assert cluster.apply(parse(f"kubectl rollout restart deployment/geo -n {NS}")).ok
    world.advance(30)
    untaint = parse("kubectl taint nodes kind-worker maintenance:NoSchedule-")
    assert "geo" in scope_of(cluster, NS, [untaint], [], since=since).admitted
    restart = parse(f"kubectl rollout restart deployment/geo -n {NS}")
    assert "geo" not in scope_of(cluster, NS, [untaint, restart], [], since=since).admitted, "geo was changed too"
    assert not scope_of(cluster, NS, [untaint], []).admitted, "without the start time the reach is unknown"
