"""The twin as the kubelet of a real control plane (``stratus twin serve``).

A real API server, controller manager and scheduler do the work of the twin's own controllers; what
they lack is a kubelet and a workload. ``KubeletAgent`` registers N Nodes and keeps their Leases, and
runs the twin's real models on the pods bound to them in wall time, in a mirror world
(``twin.mirror``): the twin kubelet's processes, probes, restarts and CrashLoopBackOff, container logs,
the network and traffic models, telemetry scraped into the TSDB and alert rules evaluated on it.

One pass (every ``interval_s``): take the pod changes from the watch (``informer.PodWatch``), copy the
other objects the models read (every ``objects_s``), finish graceful deletions, step the mirror, then
write back what a kubelet writes (``writeback``): pod status when it changed, and Events, aggregated
and sent in the background.
Leases are renewed every ``lease_renew_s`` by a thread of their own (a long pass never delays the
heartbeat). Writes go through a small thread pool with a bounded wait; every request has a timeout;
``stop()`` ends the loop, the heartbeat and the watch.

``agent.world`` exposes the mirror's ``tsdb``, ``rules``, ``clock.now`` and ``logs`` to the HTTP
servers built on it; hold ``agent.lock`` while reading the simulation, or only ``world.tsdb.lock`` for the
telemetry store and the alerts (what the Prometheus API does, so queries never wait for a pass). With ``serve_port`` the agent runs the
kubelet port (``twin.kubelet_server``: container logs, and ``kubectl exec`` given an ``exec_handler``) on
loopback and registers its Nodes at that address and port, so the API server's ``kubectl logs`` and
``exec`` reach the twin. ``inject_fault`` applies the twin's fault
injectors through the API (``inject``); ``agent.world.db_exec`` runs the runtime ones.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from urllib3.exceptions import HTTPError

from stratus.twin import faults
from stratus.twin.kubelet_agent.informer import PodWatch, list_objects
from stratus.twin.kubelet_agent.inject import apply_changes
from stratus.twin.kubelet_agent.nodes import (
    LEASE_NAMESPACE,
    REQUEST_TIMEOUT_S,
    host_ip,
    post_status,
    register,
    renew_lease,
    rfc3339,
    stale_nodes,
)
from stratus.twin.kubelet_agent.writeback import PodMemo, api_status, delete_pod, write_event, write_status
from stratus.twin.kubelet_server import WEBSOCKET_FEATURE, ExecHandler, KubeletServer
from stratus.twin.mirror import MirrorWorld
from stratus.twin.world import Logs

__all__ = ["KubeletAgent", "LEASE_NAMESPACE"]

MAX_EVENT_WRITES = 500  # per pass; the rest wait for the next pass (the recorder's rate limit)
DELETE_RETRY_S = 5.0
HEARTBEAT_WORKERS = 4


class KubeletAgent:
    """Kubelet for ``nodes`` twin nodes on the API server behind ``api`` (an official client ApiClient)."""

    def __init__(self, api: k8s.ApiClient, nodes: int = 1, prefix: str = "twin-node",
                 app: str = "hotel-reservation", interval_s: float = 1.0, *, namespace: str | None = None,
                 scrape_s: float = 15.0, rule_s: float | None = None, rules: str = "benchmark",
                 lease_renew_s: float = 10.0, objects_s: float = 2.0, writers: int = 8, serve_port: bool = False,
                 kubelet_port: int = 0, exec_handler: ExecHandler | None = None) -> None:
        # Bodies are plain manifests (the client serialises dicts as they are), hence Any over its models.
        self.api = api
        self.core: Any = k8s.CoreV1Api(api)
        self.coord: Any = k8s.CoordinationV1Api(api)
        self.apis: dict[str, Any] = {"core": self.core, "apps": k8s.AppsV1Api(api),
                                     "networking": k8s.NetworkingV1Api(api)}
        self.world = MirrorWorld(app, namespace=namespace, tick_s=interval_s, scrape_s=scrape_s, rule_s=rule_s,
                                 rules=rules)
        self.app = self.world.app
        self.nodes = [f"{prefix}-{i}" for i in range(nodes)]
        self.interval_s, self.lease_renew_s, self.objects_s = interval_s, lease_renew_s, objects_s
        self.pods: dict[str, PodMemo] = {}
        self._terminating: dict[str, tuple[dict[str, Any], float]] = {}  # uid -> (pod, next delete try)
        self.lock = threading.RLock()
        self.errors = 0  # failed requests so far (each retried on a later pass)
        self.pass_s: deque[float] = deque(maxlen=600)  # durations of the latest passes (for benchmarks)
        self.watch = PodWatch(self.core, set(self.nodes))
        self._pool = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="twin-kubelet-write")
        self._event_pool = ThreadPoolExecutor(max_workers=max(2, writers // 2), thread_name_prefix="twin-kubelet-event")
        self._dyn: DynamicClient | None = None
        self._event_futures: list[Future[None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ip_counter = [0] * nodes
        self._next_objects = 0.0
        self._lease_thread: threading.Thread | None = None
        self.server = (KubeletServer(self.world.logs, self.pod_manifest, exec_handler, host="127.0.0.1",
                                     port=kubelet_port) if serve_port else None)
        # Where the Nodes say their kubelet is: the served port, or an address nothing listens on.
        self.endpoint = ("127.0.0.1", self.server.port) if self.server is not None else None
        self.features = [WEBSOCKET_FEATURE] if exec_handler is not None and serve_port else None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Register the nodes, then run the loop in a daemon thread until ``stop()``."""
        self.register()
        self._thread = threading.Thread(target=self.run, name="twin-kubelet", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2 * REQUEST_TIMEOUT_S) -> None:
        """Stop the loop and the watch; Leases are no longer renewed, so the node lifecycle controller
        marks the nodes NotReady after the Lease duration, as for a dead kubelet."""
        self._stop.set()
        for thread in (self._thread, self._lease_thread):
            if thread is not None:
                thread.join(timeout_s)
        self.watch.stop()
        if self.server is not None:
            self.server.stop()
        for pool in (self._pool, self._event_pool):
            pool.shutdown(wait=True, cancel_futures=True)

    def register(self) -> None:
        """Create each Node (Ready, capacity, addresses, kubelet endpoint) unless it exists, take its
        Lease, and start watching pods (and serving the kubelet port first, if served)."""
        if self.server is not None and not self.server.serving:
            self.server.start()
        self._run_all([partial(register, self.core, self.coord, i, n, self.endpoint, self.features)
                       for i, n in enumerate(self.nodes)], strict=True)
        self.watch.start()
        self._lease_thread = threading.Thread(target=self._renew_leases, name="twin-kubelet-leases", daemon=True)
        self._lease_thread.start()

    def _renew_leases(self) -> None:
        """The node heartbeat, in its own thread and pool as in the kubelet, so neither a long pass nor a
        queue of status writes delays it: renew the Leases, and post the status of nodes the controller
        marked Unknown or not reported lately."""
        with ThreadPoolExecutor(max_workers=HEARTBEAT_WORKERS, thread_name_prefix="twin-kubelet-lease") as pool:
            while not self._stop.wait(self.lease_renew_s):
                futures = [pool.submit(renew_lease, self.core, self.coord, n) for n in self.nodes]
                try:
                    futures += [pool.submit(post_status, self.core, self.nodes.index(n), n, self.endpoint,
                                            self.features)
                                for n in stale_nodes(self.core, self.nodes, time.time())]
                except (ApiException, HTTPError, OSError):
                    self.errors += 1
                done, _ = wait(futures, timeout=2 * REQUEST_TIMEOUT_S)
                self.errors += sum(1 for f in done if f.exception() is not None)  # retried next time

    def run(self) -> None:
        """One pass every ``interval_s`` until stopped; a failed pass is retried on the next one."""
        while not self._stop.is_set():
            started = time.time()
            try:
                self.step()
            except (ApiException, HTTPError, OSError):
                self.errors += 1  # the API server was briefly unavailable: next pass
            self.pass_s.append(time.time() - started)
            self._stop.wait(max(0.0, self.interval_s - (time.time() - started)))

    # --- one pass ----------------------------------------------------------------------------
    def step(self) -> None:
        now = time.time()
        jobs: list[Callable[[], None]] = []
        with self.lock:
            if now >= self._next_objects:
                self.sync_objects()
                self._next_objects = now + self.objects_s
            for uid, (type_, pod) in self.watch.take().items():
                self._apply_pod(uid, type_, pod, jobs)
            self.world.step(now)
            jobs += self._deletions(now)
            jobs += self._status_writes(now)
            if all(f.done() for f in self._event_futures):
                # Events are sent in the background, as by the kubelet's event broadcaster: a backlog
                # of them on a slow API server never holds back the next pass's pod status.
                self._event_futures = [self._event_pool.submit(self._guarded, j) for j in self._event_writes()]
        self._run_all(jobs)

    def sync_objects(self) -> None:
        """Copy the non-pod objects the models read from the API server into the mirror."""
        for kind, objs in list_objects(self.apis).items():
            self.world.store.replace_kind(kind, objs)

    def _guarded(self, job: Callable[[], None]) -> None:
        try:
            job()
        except (ApiException, HTTPError, OSError):
            self.errors += 1

    def _run_all(self, jobs: list[Callable[[], None]], strict: bool = False) -> None:
        futures = [self._pool.submit(j) for j in jobs]
        done, _ = wait(futures, timeout=4 * REQUEST_TIMEOUT_S)
        for f in done:
            exc = f.exception()
            if exc is None:
                continue
            if strict:
                raise exc
            self.errors += 1

    # --- pods --------------------------------------------------------------------------------
    def _apply_pod(self, uid: str, type_: str, pod: dict[str, Any], jobs: list[Callable[[], None]]) -> None:
        store = self.world.store
        memo = self.pods.get(uid)
        m = pod["metadata"]
        if type_ == "DELETED" or m.get("deletionTimestamp"):
            if memo is not None and store.exists("Pod", memo.name, memo.namespace):
                self.world.delete_pod(store.get("Pod", memo.name, memo.namespace))  # containers stop (Killing)
            self.pods.pop(uid, None)
            if type_ == "DELETED":
                self._terminating.pop(uid, None)
            else:
                self._terminating[uid] = (pod, 0.0)
            return
        key = ("Pod", m["name"], m["namespace"])
        old = store.get(*key) if store.exists(*key) else None
        if old is not None and old["metadata"]["uid"] != uid:
            self.world.delete_pod(old)  # a pod of the same name replaced (StatefulSet)
            old = None
        if memo is None:
            i = self.nodes.index(pod["spec"]["nodeName"])
            self._ip_counter[i] += 1
            memo = self.pods[uid] = PodMemo(
                m["namespace"], m["name"], pod_ip=f"10.{244 + i // 250}.{i % 250 + 1}.{self._ip_counter[i] % 250 + 2}",
                host_ip=self.endpoint[0] if self.endpoint else host_ip(i), started_at=time.time())
        pod["status"] = old["status"] if old is not None else {
            "podIP": memo.pod_ip, "hostIP": memo.host_ip, "startTime": rfc3339(memo.started_at)}
        store.put(pod)

    def _deletions(self, now: float) -> list[Callable[[], None]]:
        """Finish graceful deletions (retried every few seconds until the watch reports the pod gone)."""
        jobs: list[Callable[[], None]] = []
        for uid, (pod, next_try) in list(self._terminating.items()):
            if now >= next_try:
                self._terminating[uid] = (pod, now + DELETE_RETRY_S)
                jobs.append(partial(delete_pod, self.core, pod))
        return jobs

    def _status_writes(self, now: float) -> list[Callable[[], None]]:
        jobs: list[Callable[[], None]] = []
        for pod in self.world.store.list("Pod"):
            memo = self.pods.get(pod["metadata"]["uid"])
            raw = pod.get("status") or {}
            if memo is None or raw == memo.raw:
                continue  # nothing the twin kubelet decides changed since the last write
            snapshot = dict(raw)  # the twin kubelet replaces these values, never mutates them
            status = api_status(pod, memo, now)
            if status == memo.written:
                memo.raw = snapshot
            else:
                jobs.append(partial(self._write_status, pod, status, memo, snapshot))
        return jobs

    def _write_status(self, pod: dict[str, Any], status: dict[str, Any], memo: PodMemo,
                      raw: dict[str, Any]) -> None:
        write_status(self.core, pod, status)
        memo.written, memo.raw = status, raw

    def _event_writes(self) -> list[Callable[[], None]]:
        outbox = self.world.store.outbox
        jobs: list[Callable[[], None]] = []
        while outbox and len(jobs) < MAX_EVENT_WRITES:
            _, ev = outbox.popitem(last=False)
            jobs.append(partial(write_event, self.core, ev))
        return jobs

    # --- faults ------------------------------------------------------------------------------
    def inject_fault(self, name: str, target: str | None, params: dict[str, Any] | None = None,
                     namespace: str | None = None) -> dict[str, Any]:
        """Inject the twin's fault ``name`` on ``target`` in ``namespace`` (default the app's): object
        changes are made through the API, runtime changes (database accounts) in the mirror.

        Returns the injector's record plus ``applied``: the API changes made, in order.
        """
        with self.lock:
            self.sync_objects()
            with self.world.in_namespace(namespace), self.world.journaled() as changes:
                record = faults.inject(self.world, name, target, params)
        if self._dyn is None:
            self._dyn = DynamicClient(self.api)
        return {**record, "applied": apply_changes(self._dyn, changes)}

    # --- the kubelet port's view -------------------------------------------------------------
    @property
    def logs(self) -> Logs:
        """The containers' logs (the mirror's), which the kubelet port serves."""
        return self.world.logs

    @property
    def kubelet_port(self) -> int | None:
        return self.endpoint[1] if self.endpoint else None

    def pod_manifest(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod (spec and the twin kubelet's status) if it runs on these nodes, as the kubelet port needs it."""
        with self.lock:
            store = self.world.store
            return copy.deepcopy(store.get("Pod", name, namespace)) if store.exists("Pod", name, namespace) else None
