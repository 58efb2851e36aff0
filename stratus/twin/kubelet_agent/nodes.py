"""Nodes and their Leases as a kubelet registers and renews them (``twin.kubelet_agent``).

A Node is created once (Ready, the pressure conditions False, capacity, addresses, the kubelet
endpoint); its ``coordination.k8s.io`` Lease in ``kube-node-lease`` is the heartbeat the node lifecycle
controller reads, renewed every few seconds so the Node stays Ready. As the kubelet, the agent also
re-posts the node status when the controller has marked it Unknown (after a missed heartbeat: the
controller never sets Ready back itself) and at least every few minutes.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
KUBELET_PORT = 10250
REQUEST_TIMEOUT_S = 10.0
STATUS_REPORT_S = 240.0  # an unchanged node status is re-posted within the kubelet's 5-minute report period
NODE_RESOURCES = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
_PRESSURE = (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
             ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
             ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))


def rfc3339(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def host_ip(i: int) -> str:
    """The InternalIP of the i-th twin node."""
    return f"172.18.{i // 250}.{i % 250 + 2}"


def node_manifest(i: int, name: str, endpoint: tuple[str, int] | None = None,
                  features: list[str] | None = None) -> dict[str, Any]:
    """The i-th Node; ``endpoint`` is the (address, port) of a served kubelet port, ``features`` the
    features it declares (e.g. WebSocket exec)."""
    now = rfc3339()
    address, port = endpoint or (host_ip(i), KUBELET_PORT)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                              "kubernetes.io/arch": "amd64"}},
        "status": {
            "capacity": NODE_RESOURCES, "allocatable": NODE_RESOURCES,
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            **({"declaredFeatures": features} if features else {}),
            "conditions": [
                {"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now,
                 "lastTransitionTime": now} for t, r, m in _PRESSURE
            ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                  "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                  "lastTransitionTime": now}],
            "nodeInfo": {"kubeletVersion": "v1.37.2-twin", "containerRuntimeVersion": "twin://1",
                         "operatingSystem": "linux", "architecture": "amd64", "osImage": "stratus twin",
                         "kernelVersion": "", "kubeProxyVersion": "", "machineID": name, "systemUUID": name,
                         "bootID": name},
        },
    }


def register(core: Any, coord: Any, i: int, name: str, endpoint: tuple[str, int] | None = None,
             features: list[str] | None = None) -> None:
    """Create the Node unless it exists, post its status and take its Lease."""
    try:
        core.create_node(node_manifest(i, name, endpoint, features), _request_timeout=REQUEST_TIMEOUT_S, _preload_content=False)
    except ApiException as exc:
        if exc.status != 409:
            raise
    post_status(core, i, name, endpoint, features)
    renew_lease(core, coord, name)


def post_status(core: Any, i: int, name: str, endpoint: tuple[str, int] | None = None,
                features: list[str] | None = None) -> None:
    core.patch_node_status(name, {"status": node_manifest(i, name, endpoint, features)["status"]}, _request_timeout=REQUEST_TIMEOUT_S,
                           _preload_content=False)


def stale_nodes(core: Any, names: list[str], now: float) -> list[str]:
    """Those of ``names`` whose status must be posted again: Ready is not True, or its heartbeat is older
    than ``STATUS_REPORT_S`` (one list of Nodes from the API server's cache)."""
    resp = core.list_node(resource_version="0", _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S)
    wanted, out = set(names), []
    for node in json.loads(resp.data).get("items") or []:
        if node["metadata"]["name"] not in wanted:
            continue
        conditions = node.get("status", {}).get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        beat = ready.get("lastHeartbeatTime")
        if ready.get("status") != "True" or not beat or now - datetime.fromisoformat(
                beat.replace("Z", "+00:00")).timestamp() > STATUS_REPORT_S:
            out.append(node["metadata"]["name"])
    return out


def renew_lease(core: Any, coord: Any, node: str) -> None:
    """Renew the node's Lease, creating it (owned by the Node, as the kubelet does) when missing."""
    spec = {"holderIdentity": node, "leaseDurationSeconds": LEASE_DURATION_S, "renewTime": micro_now()}
    try:
        coord.patch_namespaced_lease(node, LEASE_NAMESPACE, {"spec": spec}, _request_timeout=REQUEST_TIMEOUT_S,
                                     _preload_content=False)
    except ApiException as exc:
        if exc.status != 404:
            raise
        uid = core.read_node(node, _request_timeout=REQUEST_TIMEOUT_S).metadata.uid
        coord.create_namespaced_lease(LEASE_NAMESPACE, {
            "metadata": {"name": node, "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]},
            "spec": spec}, _request_timeout=REQUEST_TIMEOUT_S, _preload_content=False)
