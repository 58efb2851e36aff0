"""The Cluster contract where pods are scheduled and run: scheduling failures, endpoints, events.

Each test runs on the twin and on the real control plane with the twin as its kubelet
(``running_backend``). The real scheduler, endpoints and workload controllers are the reference: each
case here is one where the twin's own controllers were checked (and fixed) against them.
"""

from __future__ import annotations

from typing import Any

import pytest
from contract_backends import KNOWN_IMAGE, Backend, running_backend, scheduling_message
from kube_manifests import deployment

from stratus.cluster.base import NotFound

__all__ = ["running_backend"]  # the fixture, imported so pytest finds it here


def _pods(b: Backend, app: str) -> list[dict[str, Any]]:
    return [p for p in b.cluster.list("Pod", b.namespace, {"app": app})
            if p["kind"] != "Omitted" and not p["metadata"].get("deletionTimestamp")]


def _unschedulable(b: Backend, app: str) -> dict[str, Any] | None:
    """The PodScheduled=False condition of the app's one pod, once the scheduler has given up on it."""
    pods = _pods(b, app)
    conds = [c for p in pods for c in (p.get("status") or {}).get("conditions") or []
             if c["type"] == "PodScheduled" and c["status"] == "False"]
    return conds[0] if conds else None


def _pod_with(b: Backend, name: str, **spec: Any) -> None:
    d = deployment(name, image=KNOWN_IMAGE, replicas=1)
    d["spec"]["template"]["spec"].update(spec)
    b.create(d)


def _failed_scheduling(b: Backend, app: str) -> list[dict[str, Any]]:
    return [e for e in b.cluster.events(b.namespace) if e.get("reason") == "FailedScheduling"
            and e["involvedObject"]["name"].startswith(app + "-")]


def _check_failed_scheduling(b: Backend, app: str, cond: dict[str, Any]) -> None:
    evs = b.eventually(lambda: _failed_scheduling(b, app), f"FailedScheduling event of {app}")
    ev = evs[0]
    assert ev["type"] == "Warning" and ev["message"] == cond["message"]
    assert ev["involvedObject"]["kind"] == "Pod" and ev["involvedObject"]["namespace"] == b.namespace
    assert ev.get("reportingComponent") == "default-scheduler"


def test_requests_beyond_any_node(running_backend: Backend) -> None:
    """More than a node's allocatable: no node fits even empty, so preemption is not helpful."""
    b = running_backend
    _pod_with(b, "big", containers=[{"name": "main", "image": KNOWN_IMAGE,
                                     "resources": {"requests": {"cpu": "500", "memory": "64Mi"}}}])
    _pod_with(b, "huge", containers=[{"name": "main", "image": KNOWN_IMAGE,
                                      "resources": {"requests": {"cpu": "100m", "memory": "4000Gi"}}}])
    n = len(b.cluster.list("Node"))
    for app, res in (("big", "cpu"), ("huge", "memory")):
        cond = b.eventually(lambda app=app: _unschedulable(b, app), f"pod of {app} unschedulable")
        assert cond["reason"] == "Unschedulable"
        assert cond["message"] == (f"0/{n} nodes are available: {n} Insufficient {res}. preemption: 0/{n} nodes "
                                   f"are available: {n} Preemption is not helpful for scheduling."), cond["message"]
        _check_failed_scheduling(b, app, cond)


def test_requests_beyond_free_capacity(running_backend: Backend) -> None:
    """Fits an empty node but not next to the pods already there: preemption is tried and finds no victims
    (all pods have the same priority)."""
    b = running_backend
    cpu_m = min(int(float(b.cluster.get("Node", n)["status"]["allocatable"]["cpu"]) * 1000) for n in b.nodes)
    half = {"requests": {"cpu": f"{cpu_m * 52 // 100}m"}}
    filler = deployment("filler", image=KNOWN_IMAGE, replicas=len(b.nodes))
    filler["spec"]["template"]["spec"]["containers"][0]["resources"] = half
    b.create(filler)
    b.eventually(lambda: len([p for p in _pods(b, "filler") if p["spec"].get("nodeName")]) == len(b.nodes),
                 "one filler pod on each node")
    _pod_with(b, "more", containers=[{"name": "main", "image": KNOWN_IMAGE, "resources": half}])
    cond = b.eventually(lambda: _unschedulable(b, "more"), "pod of more unschedulable")
    reasons, preemption = scheduling_message(cond["message"])
    assert "Insufficient cpu" in reasons and "No preemption victims found for incoming pod" in preemption, \
        cond["message"]
    _check_failed_scheduling(b, "more", cond)


def test_untolerated_taint_and_selector_mismatch(running_backend: Backend) -> None:
    """Only one node matches the selector and it carries a taint: each node reports its own first failure,
    in the scheduler's filter order (taints before node affinity), counted per reason."""
    b = running_backend
    target = b.nodes[0]
    assert b.act("label", "Node", target, set={"pool": "db"}).ok
    assert b.act("taint", "Node", target, add=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]).ok
    _pod_with(b, "picky", nodeSelector={"pool": "db"})
    _pod_with(b, "lost", nodeSelector={"pool": "nowhere"})
    try:
        cond = b.eventually(lambda: _unschedulable(b, "picky"), "pod of picky unschedulable")
        assert scheduling_message(cond["message"]) == (
            ["node(s) didn't match Pod's node affinity/selector", "node(s) had untolerated taint(s)"],
            ["Preemption is not helpful for scheduling"]), cond["message"]
        assert "1 node(s) had untolerated taint(s)" in cond["message"]
        cond = b.eventually(lambda: _unschedulable(b, "lost"), "pod of lost unschedulable")
        # the tainted node reports its taint, not the selector: the TaintToleration filter runs first
        assert scheduling_message(cond["message"]) == (
            ["node(s) didn't match Pod's node affinity/selector", "node(s) had untolerated taint(s)"],
            ["Preemption is not helpful for scheduling"]), cond["message"]
        # tolerating the taint lets the pod onto the node
        tol = [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]
        assert b.act("patch", "Deployment", "picky",
                     patch={"spec": {"template": {"spec": {"tolerations": tol}}}}).ok
        b.eventually(lambda: any(p["spec"].get("nodeName") == target and p["status"].get("phase") == "Running"
                                 for p in _pods(b, "picky")), "pod of picky running on the tainted node")
    finally:
        b.act("taint", "Node", target, remove=[{"key": "dedicated"}])
        b.act("label", "Node", target, remove=["pool"])


def test_deleting_a_deployment_collects_its_replicasets_and_pods(running_backend: Backend) -> None:
    b = running_backend
    b.create(deployment("gone", image=KNOWN_IMAGE, replicas=2))
    b.eventually(lambda: len([p for p in _pods(b, "gone") if p["status"].get("phase") == "Running"]) == 2,
                 "two pods of gone running")
    assert b.act("delete", "Deployment", "gone").ok
    with_rs = lambda: b.cluster.list("ReplicaSet", b.namespace, {"app": "gone"})  # noqa: E731
    b.eventually(lambda: not with_rs() and not b.cluster.list("Pod", b.namespace, {"app": "gone"}),
                 "ReplicaSet and pods of gone garbage-collected")
    with pytest.raises(NotFound):
        b.cluster.get("Deployment", "gone", b.namespace)


def _service(name: str, selector: dict[str, str], ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"svc": name}},
            "spec": {"selector": selector, "ports": ports, **spec}}


def _subsets(b: Backend, name: str) -> list[dict[str, Any]]:
    """The Endpoints' subsets cut down to what both backends must agree on (addresses by pod name)."""
    ep = b.cluster.get("Endpoints", name, b.namespace)
    out = []
    for s in ep.get("subsets") or []:
        out.append({"ports": sorted((p.get("name") or "", p["port"]) for p in s.get("ports") or []),
                    "ready": sorted(a["targetRef"]["name"] for a in s.get("addresses") or []),
                    "notReady": sorted(a["targetRef"]["name"] for a in s.get("notReadyAddresses") or [])})
    return out


def test_endpoints_on_selector_and_port_mismatch(running_backend: Backend) -> None:
    b = running_backend
    d = deployment("cache", image=KNOWN_IMAGE, replicas=2)
    d["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "mc", "containerPort": 11211}]
    b.create(d)
    bad = deployment("cachebad", image="nosuch/cache:v0", replicas=1)
    bad["spec"]["template"]["metadata"]["labels"]["role"] = "cache"
    bad["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "mc", "containerPort": 11211}]
    b.create(bad)
    b.eventually(lambda: len([p for p in _pods(b, "cache") if p["status"].get("phase") == "Running"]) == 2
                 and _pods(b, "cachebad"), "two pods of cache running and one of cachebad created")
    running = sorted(p["metadata"]["name"] for p in _pods(b, "cache"))
    b.create(_service("by-name", {"app": "cache"}, [{"name": "tcp", "port": 80, "targetPort": "mc"}]))
    b.create(_service("by-number", {"app": "cache"}, [{"name": "tcp", "port": 80, "targetPort": 9999}]))
    b.create(_service("no-such-name", {"app": "cache"}, [{"name": "tcp", "port": 80, "targetPort": "nope"}]))
    b.create(_service("two-ports", {"app": "cache"}, [{"name": "a", "port": 80, "targetPort": "mc"},
                                                      {"name": "b", "port": 81, "targetPort": "nope"}]))
    b.create(_service("nobody", {"app": "nothing"}, [{"name": "tcp", "port": 80, "targetPort": 80}]))
    want = {
        "by-name": [{"ports": [("tcp", 11211)], "ready": running, "notReady": []}],
        # a number is taken as it is, whether or not a container declares it
        "by-number": [{"ports": [("tcp", 9999)], "ready": running, "notReady": []}],
        # a name no container declares: the pods are left out, the Endpoints stay empty
        "no-such-name": [],
        # ... but only for that port: the other one still lists them
        "two-ports": [{"ports": [("a", 11211)], "ready": running, "notReady": []}],
        "nobody": [],
    }
    for name, subsets in want.items():
        b.eventually(lambda name=name, subsets=subsets: _subsets(b, name) == subsets,
                     f"Endpoints {name} == {subsets}")
    # a pod that is not Ready (its image does not pull) is listed under notReadyAddresses ...
    bad_pod = _pods(b, "cachebad")[0]["metadata"]["name"]
    b.create(_service("role", {"role": "cache"}, [{"name": "tcp", "port": 80, "targetPort": "mc"}]))
    b.eventually(lambda: _subsets(b, "role") == [{"ports": [("tcp", 11211)], "ready": [], "notReady": [bad_pod]}],
                 "Endpoints role with the pod not ready")
    # ... unless the Service publishes not-ready addresses
    b.create(_service("role-all", {"role": "cache"}, [{"name": "tcp", "port": 80, "targetPort": "mc"}],
                      publishNotReadyAddresses=True))
    b.eventually(lambda: _subsets(b, "role-all") == [{"ports": [("tcp", 11211)], "ready": [bad_pod], "notReady": []}],
                 "Endpoints role-all listing the not-ready pod as ready")
    # a selector edited to match nothing empties the Endpoints
    assert b.act("patch", "Service", "by-name", type="merge", patch={"spec": {"selector": {"app": "none"}}}).ok
    b.eventually(lambda: _subsets(b, "by-name") == [], "Endpoints by-name emptied")
    ep = b.cluster.get("Endpoints", "by-name", b.namespace)
    assert ep["metadata"]["labels"].get("svc") == "by-name"  # the Service's labels are copied


def _slice(b: Backend, name: str) -> dict[str, Any]:
    """The Service's one EndpointSlice cut down to what both backends must agree on."""
    slices = [s for s in b.cluster.list("EndpointSlice", b.namespace, {"kubernetes.io/service-name": name})
              if s["kind"] != "Omitted"]
    assert len(slices) == 1, [s["metadata"]["name"] for s in slices]
    s = slices[0]
    assert s["addressType"] == "IPv4" and s["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    return {"ports": sorted((p.get("name") or "", p["port"]) for p in s.get("ports") or []),
            "endpoints": sorted((e["targetRef"]["name"], e["conditions"]["ready"]) for e in s.get("endpoints") or [])}


def test_endpoint_slices_list_pods_whose_ports_do_not_resolve(running_backend: Backend) -> None:
    """EndpointSlices differ from Endpoints: a pod whose named port no container declares is still an
    endpoint (with no ports), and a not-ready pod is an endpoint whose ready condition is false."""
    b = running_backend
    d = deployment("cache", image=KNOWN_IMAGE, replicas=1)
    d["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "mc", "containerPort": 11211}]
    b.create(d)
    b.create(deployment("cachebad", image="nosuch/cache:v0", replicas=1))
    b.eventually(lambda: len([p for p in _pods(b, "cache") if p["status"].get("phase") == "Running"]) == 1
                 and _pods(b, "cachebad"), "a pod of cache running and one of cachebad created")
    good, bad = _pods(b, "cache")[0]["metadata"]["name"], _pods(b, "cachebad")[0]["metadata"]["name"]
    b.create(_service("by-name", {"app": "cache"}, [{"name": "tcp", "port": 80, "targetPort": "mc"}]))
    b.create(_service("no-such-name", {"app": "cache"}, [{"name": "tcp", "port": 80, "targetPort": "nope"}]))
    b.create(_service("nobody", {"app": "nothing"}, [{"name": "tcp", "port": 80, "targetPort": 80}]))
    b.create(_service("bad", {"app": "cachebad"}, [{"name": "tcp", "port": 80, "targetPort": 80}]))
    want = {"by-name": {"ports": [("tcp", 11211)], "endpoints": [(good, True)]},
            "no-such-name": {"ports": [], "endpoints": [(good, True)]},
            "nobody": {"ports": [], "endpoints": []},
            "bad": {"ports": [("tcp", 80)], "endpoints": [(bad, False)]}}
    for name, sl in want.items():
        b.eventually(lambda name=name, sl=sl: _slice(b, name) == sl, f"EndpointSlice of {name} == {sl}")
    assert (b.cluster.get("Endpoints", "no-such-name", b.namespace).get("subsets") or []) == []
    assert b.act("delete", "Service", "nobody").ok  # the slice goes with its Service (garbage collection)
    b.eventually(lambda: not b.cluster.list("EndpointSlice", b.namespace, {"kubernetes.io/service-name": "nobody"}),
                 "EndpointSlice of nobody collected")
