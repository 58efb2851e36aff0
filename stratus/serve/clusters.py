"""Which world ``stratus serve`` acts on: the embedded twin (default, offline) or a real cluster.

A provider hands a worker the ``Cluster`` for an incident's namespace for the length of one graph run
(``session``). The twin is one in-process world: a session holds it alone, and between incidents the
twin's own rule evaluator plays Prometheus + Alertmanager, feeding its alert groups into the same
intake as ``POST /api/v1/alerts`` does. On a real cluster (``KubeCluster`` with a Prometheus HTTP API)
alerts come only from the webhook, and each namespace gets its own client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from stratus.cluster.base import Cluster
from stratus.serve.payload import WebhookPayload
from stratus.twin.cluster import TwinCluster
from stratus.twin.prom.alertmanager import webhook_payload

log = logging.getLogger("stratus.serve")

Intake = Callable[[WebhookPayload], Any]


class ClusterProvider(Protocol):
    default_namespace: str

    def session(self, namespace: str) -> contextlib.AbstractContextManager[Cluster]: ...

    def start(self, intake: Intake) -> None: ...

    def stop(self) -> None: ...


class PacedTwin(TwinCluster):
    """A twin whose ``wait`` also sleeps ``pace`` wall seconds per simulated second.

    With pace 0 (the default) the twin runs as fast as it can; a small pace lets a person (or a test that
    kills the process mid-transaction) follow an incident as it happens."""

    def __init__(self, *args: Any, pace: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pace = pace

    def wait(self, seconds: float) -> None:
        super().wait(seconds)
        if self.pace > 0 and seconds > 0:
            time.sleep(seconds * self.pace)


class TwinProvider:
    """The embedded HotelReservation twin, optionally with a fault injected at start.

    Args:
        seed: the twin's seed.
        fault: ``TYPE:TARGET`` of a fault to inject after warm-up (see ``stratus faults``).
        poll_s: wall seconds between evaluations of the twin's alert rules; 0 turns the alert source off.
        tick_s: simulated seconds the twin advances per poll.
        pace: wall seconds slept per simulated second in ``wait`` (see ``PacedTwin``).
        cluster: a ready twin to serve instead of building one (Python API, tests).
    """

    def __init__(self, seed: int = 0, fault: str | None = None, poll_s: float = 5.0, tick_s: float = 30.0,
                 pace: float = 0.0, warm_up_s: float = 300.0, cluster: TwinCluster | None = None) -> None:
        from stratus.twin.faults import inject

        self.cluster = cluster or PacedTwin(seed=seed, warm_up_s=warm_up_s, pace=pace)
        if fault:
            kind, _, target = fault.partition(":")
            inject(self.cluster.world, kind, target or None)
        self.default_namespace = self.cluster.namespace
        self.poll_s, self.tick_s = poll_s, tick_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent: dict[str, str] = {}

    @contextlib.contextmanager
    def session(self, namespace: str) -> Iterator[Cluster]:
        with self._lock:
            yield self.cluster

    def start(self, intake: Intake) -> None:
        if self.poll_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, args=(intake,), name="stratus-twin-alerts", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _poll(self, intake: Intake) -> None:
        while not self._stop.wait(self.poll_s):
            if not self._lock.acquire(blocking=False):
                continue  # an incident is running on the twin: its own waits advance the clock
            try:
                self.cluster.wait(self.tick_s)
                payloads = self.evaluate()
            finally:
                self._lock.release()
            for p in payloads:
                try:
                    intake(p)
                except Exception as exc:  # a store hiccup must not end the alert source
                    log.warning("twin alert group %s not accepted: %s", p.groupKey, exc)

    def evaluate(self) -> list[WebhookPayload]:
        """The twin's alert groups (one per namespace) that changed since they were last sent."""
        by_ns: dict[str, list[dict[str, Any]]] = {}
        for a in self.cluster.world.rules.alertmanager_alerts(active_only=False):
            if a["labels"].get("alertname") != "Watchdog":
                by_ns.setdefault(a["labels"].get("namespace", ""), []).append(a)
        out = []
        for ns, alerts in sorted(by_ns.items()):
            payload = webhook_payload(alerts, receiver="stratus-twin")
            signature = json.dumps(sorted((a["fingerprint"], a["status"]) for a in payload["alerts"]))
            firing = any(a["status"] == "firing" for a in payload["alerts"])
            # as Alertmanager: a group is sent when it changed, and resolved only if it was sent firing
            if self._sent.get(ns) != signature and (firing or ns in self._sent):
                self._sent[ns] = signature
                out.append(WebhookPayload.model_validate(payload))
        return out


class KubeProvider:
    """A real cluster: one ``KubeCluster`` per namespace, telemetry from a Prometheus HTTP API."""

    def __init__(self, prometheus_url: str, *, kubeconfig: str | None = None, context: str | None = None,
                 alertmanager_url: str | None = None, default_namespace: str = "default") -> None:
        self.prometheus_url, self.alertmanager_url = prometheus_url, alertmanager_url
        self.kubeconfig, self.context = kubeconfig, context
        self.default_namespace = default_namespace
        self._clusters: dict[str, Cluster] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def session(self, namespace: str) -> Iterator[Cluster]:
        from stratus.cluster.kube import KubeCluster

        with self._lock:
            if namespace not in self._clusters:
                self._clusters[namespace] = KubeCluster(
                    self.kubeconfig, context=self.context, namespace=namespace,
                    prometheus_url=self.prometheus_url, alertmanager_url=self.alertmanager_url)
            cluster = self._clusters[namespace]
        yield cluster  # the store's namespace claim makes this worker the namespace's only user

    def start(self, intake: Intake) -> None:
        """Alerts come from Alertmanager's webhook only."""

    def stop(self) -> None:
        self._clusters.clear()
