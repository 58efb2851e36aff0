"""The twin as the kubelet of a real control plane (``stratus twin serve``): nodes, Leases, pod status.

A real API server, controller manager and scheduler do the work of the twin's own controllers; what they
lack is a kubelet. ``KubeletAgent`` registers N Nodes, renews their ``coordination.k8s.io`` Leases in
``kube-node-lease`` so the node lifecycle controller keeps them Ready, polls the pods bound to them and
writes their status the way a kubelet does (phase, IPs, conditions, container statuses), and finishes
graceful deletions. Which images pull is the twin's decision: the app's registry (``App.images``) and the
twin kubelet's own waiting states (``kubelet.pull_failure``), with its back-off.

This first slice runs no processes: a container whose image pulls is running and ready at once, and its
log (``logs``, the twin's ``Logs``) gets the process's start line. With ``serve_port=True`` the agent
runs the kubelet port (``kubelet_server``) on loopback and registers its Nodes at that address and port,
so the API server's ``kubectl logs`` (and, given an ``exec_handler``, ``kubectl exec``) reach the twin.
The loop is bounded (one pass every ``interval_s``, every request with a timeout) and stops cleanly on
``stop()``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from stratus.twin.apps import App, load_app
from stratus.twin.kubelet import BACKOFF_MAX, BACKOFF_START, pull_failure
from stratus.twin.kubelet_server import WEBSOCKET_FEATURE, ExecHandler, KubeletServer
from stratus.twin.store import rfc3339
from stratus.twin.world import Logs

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_S = 40
KUBELET_PORT = 10250
REQUEST_TIMEOUT_S = 10.0


def _now(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _PodState:
    """What the agent remembers of one pod between passes (a kubelet's in-memory pod cache)."""

    pod_ip: str
    host_ip: str
    started_at: float
    pull: dict[str, tuple[float, float]] = field(default_factory=dict)  # container -> (next try, back-off)
    written: dict[str, Any] | None = None


class KubeletAgent:
    """Kubelet for ``nodes`` twin nodes on the API server behind ``api`` (an official client ApiClient).

    Args:
        node_ip: every Node's InternalIP (default 172.18.0.x; ``serve_port`` makes it 127.0.0.1).
        kubelet_port: the port the Nodes advertise; with ``serve_port``, the port served (0: a free one).
        serve_port: run the kubelet port for these Nodes (logs; exec with ``exec_handler``).
        exec_handler: runs ``kubectl exec`` commands (see ``kubelet_server.ExecHandler``).
    """

    def __init__(self, api: k8s.ApiClient, nodes: int = 1, prefix: str = "twin-node",
                 app: str = "hotel-reservation", interval_s: float = 1.0, *, node_ip: str | None = None,
                 kubelet_port: int = KUBELET_PORT, serve_port: bool = False,
                 exec_handler: ExecHandler | None = None) -> None:
        # Bodies are plain manifests (the client serialises dicts as they are), hence Any over its models.
        self.core: Any = k8s.CoreV1Api(api)
        self.coord: Any = k8s.CoordinationV1Api(api)
        self.app: App = load_app(app)
        self.nodes = [f"{prefix}-{i}" for i in range(nodes)]
        self.interval_s = interval_s
        self.pods: dict[str, _PodState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ip_counter = 0
        self.logs = Logs()
        self.node_ip = node_ip or ("127.0.0.1" if serve_port else None)
        self.kubelet_port = kubelet_port
        self.server = (KubeletServer(self.logs, self.pod_manifest, exec_handler, host=self.node_ip or "127.0.0.1",
                                     port=kubelet_port) if serve_port else None)
        if self.server is not None:
            self.kubelet_port = self.server.port

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Register the nodes, then run the loop in a daemon thread until ``stop()``."""
        self.register()
        self._thread = threading.Thread(target=self.run, name="twin-kubelet", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2 * REQUEST_TIMEOUT_S) -> None:
        """Stop the loop; Leases are no longer renewed, so the node lifecycle controller will mark the
        nodes NotReady after the Lease duration, as it would for a dead kubelet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.server is not None:
            self.server.stop()

    def run(self) -> None:
        """One pass every ``interval_s`` until stopped; a failed pass is retried on the next one."""
        while not self._stop.is_set():
            try:
                self.step()
            except ApiException:
                pass  # the API server was briefly unavailable or a write conflicted: next pass
            self._stop.wait(self.interval_s)

    def step(self) -> None:
        for node in self.nodes:
            self._renew_lease(node)
            for pod in self.core.list_pod_for_all_namespaces(
                    field_selector=f"spec.nodeName={node}", _request_timeout=REQUEST_TIMEOUT_S).items:
                self._sync_pod(node, pod)

    # --- nodes and Leases --------------------------------------------------------------------
    def register(self) -> None:
        """Start the kubelet port if served, then create each Node (Ready, capacity, addresses, kubelet
        endpoint) unless it exists."""
        if self.server is not None and not self.server.serving:
            self.server.start()
        for i, name in enumerate(self.nodes):
            body = self._node(i, name)
            try:
                self.core.create_node(body, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status != 409:
                    raise
            self.core.patch_node_status(name, {"status": body["status"]}, _request_timeout=REQUEST_TIMEOUT_S)
            self._renew_lease(name)

    def _node(self, i: int, name: str) -> dict[str, Any]:
        resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
        now = _now()
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": "amd64"}},
            "status": {
                "capacity": resources, "allocatable": resources,
                "addresses": [{"type": "InternalIP", "address": self._host_ip(i)},
                              {"type": "Hostname", "address": name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
                **({"declaredFeatures": [WEBSOCKET_FEATURE]}
                   if self.server is not None and self.server.exec_handler is not None else {}),
                "conditions": [
                    {"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": now,
                     "lastTransitionTime": now}
                    for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                                    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                                    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))
                ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                      "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                      "lastTransitionTime": now}],
                "nodeInfo": {"kubeletVersion": "v1.37.2-twin", "containerRuntimeVersion": "twin://1",
                             "operatingSystem": "linux", "architecture": "amd64", "osImage": "stratus twin",
                             "kernelVersion": "", "kubeProxyVersion": "", "machineID": name, "systemUUID": name,
                             "bootID": name},
            },
        }

    def _host_ip(self, i: int) -> str:
        return self.node_ip or f"172.18.0.{i + 2}"

    def _renew_lease(self, node: str) -> None:
        spec = {"holderIdentity": node, "leaseDurationSeconds": LEASE_DURATION_S, "renewTime": _micro_now()}
        try:
            self.coord.patch_namespaced_lease(node, LEASE_NAMESPACE, {"spec": spec},
                                              _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            if exc.status != 404:
                raise
            uid = self.core.read_node(node, _request_timeout=REQUEST_TIMEOUT_S).metadata.uid
            self.coord.create_namespaced_lease(LEASE_NAMESPACE, {
                "metadata": {"name": node, "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}]},
                "spec": spec}, _request_timeout=REQUEST_TIMEOUT_S)

    # --- pods --------------------------------------------------------------------------------
    def _sync_pod(self, node: str, pod: Any) -> None:
        m = pod.metadata
        if m.deletion_timestamp is not None:
            # Containers stop at once here, so a graceful deletion finishes as soon as it is seen. The
            # options go in the body (the API server ignores query parameters when there is one), as
            # the kubelet's status manager sends them.
            try:
                self.core.delete_namespaced_pod(m.name, m.namespace,
                                                body={"gracePeriodSeconds": 0, "preconditions": {"uid": m.uid}},
                                                _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise
            self.pods.pop(m.uid, None)
            self.logs.drop_pod(m.namespace, m.name)
            return
        st = self.pods.get(m.uid)
        if st is None:
            self._ip_counter += 1
            i = self.nodes.index(node)
            st = _PodState(pod_ip=f"10.244.{i + 1}.{self._ip_counter % 250 + 2}", host_ip=self._host_ip(i),
                           started_at=time.time())
            self.pods[m.uid] = st
            self._start_logs(pod)
        status = self._status(pod, st)
        if status != st.written:
            self.core.patch_namespaced_pod_status(m.name, m.namespace, {"status": status},
                                                  _request_timeout=REQUEST_TIMEOUT_S)
            st.written = status

    def _status(self, pod: Any, st: _PodState) -> dict[str, Any]:
        now = time.time()
        started = _now(st.started_at)
        statuses = [self._container(c, st, now, started) for c in pod.spec.containers]
        ready = all(s["ready"] for s in statuses)
        not_ready = {} if ready else {"reason": "ContainersNotReady",
                                      "message": "containers with unready status: ["
                                                 + " ".join(s["name"] for s in statuses if not s["ready"]) + "]"}
        return {
            "phase": "Running" if any(s["started"] for s in statuses) else "Pending",
            "hostIP": st.host_ip, "hostIPs": [{"ip": st.host_ip}],
            "podIP": st.pod_ip, "podIPs": [{"ip": st.pod_ip}], "startTime": started,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": started, **not_ready},
                {"type": "Ready", "status": str(ready), "lastTransitionTime": started, **not_ready},
            ],
            "containerStatuses": statuses,
        }

    def _container(self, c: Any, st: _PodState, now: float, started: str) -> dict[str, Any]:
        base = {"name": c.name, "image": c.image or "", "imageID": "", "restartCount": 0}
        if (c.image or "") in self.app.images:
            return {**base, "ready": True, "started": True, "containerID": f"twin://{c.name}",
                    "state": {"running": {"startedAt": started}}}
        # The twin kubelet's pull back-off: a failed try shows ErrImagePull, the wait before the next one
        # (10 s, 20 s, ... capped) ImagePullBackOff, as on a real node.
        next_at, backoff = st.pull.get(c.name, (0.0, 0.0))
        tried = now >= next_at
        if tried:
            backoff = BACKOFF_START if not backoff else min(backoff * 2, BACKOFF_MAX)
            st.pull[c.name] = (now + backoff, backoff)
        return {**base, "ready": False, "started": False,
                "state": {"waiting": pull_failure(c.image or "", tried)}}

    # --- the kubelet port's view -------------------------------------------------------------
    def _start_logs(self, pod: Any) -> None:
        """A new pod's containers whose images pull start at once: their logs begin with a start line."""
        self.logs.now = now = time.time()
        ref = {"metadata": {"namespace": pod.metadata.namespace, "name": pod.metadata.name}}
        for c in pod.spec.containers:
            binaries = self.app.images.get(c.image or "", {}).get("binaries", [])
            binary = (c.command or [""])[0] if c.command else (binaries[0] if len(binaries) == 1 else "")
            if binary in binaries:
                port = self.app.binaries[binary]["port"]
                self.logs.start(ref, c.name, [f"{rfc3339(now)} {binary} starting, listening on port {port}"])

    def pod_manifest(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod (spec and status) if it is bound to one of these nodes, as the kubelet port needs it."""
        try:
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        if pod.spec.node_name not in self.nodes:
            return None
        out: dict[str, Any] = self.core.api_client.sanitize_for_serialization(pod)
        return out
