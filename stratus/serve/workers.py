"""Graph workers of ``stratus serve``: a bounded pool of threads, each running one incident at a time.

A worker claims an incident from the store together with its namespace (one writer per namespace
across every process on the database), runs or resumes the incident's checkpointed graph thread
(``thread_id`` = incident id) through ``stratus.api.invoke_graph``, renews its lease while the graph
runs, and reports the outcome back. The graph's own namespace write lock (``Cluster.acquire_lock``,
a Lease on a real cluster) is held by the incident id, so a process that resumes an incident whose
process died holds the same lock and undoes the open transaction first (``invoke_graph``'s recovery).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from stratus.api import IncidentResult, invoke_graph, open_checkpointer
from stratus.context import Context
from stratus.serve.clusters import ClusterProvider
from stratus.serve.metrics import ServeMetrics
from stratus.serve.notify import Notifier
from stratus.serve.store import Claim, IntakeStore
from stratus.serve.watch import JournalWatcher
from stratus.tools.journal import POLL_S

log = logging.getLogger("stratus.serve")


def default_holder() -> str:
    """This process's name in claims: host and pid, unique among processes sharing a database."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerSettings:
    """How workers run incidents.

    Attributes:
        workers: threads, so at most this many incidents run at once in this process (0: intake only).
        lease_s: claim lifetime; renewed every third of it. A dead process's incidents resume after it.
        idle_s: wait between claims when nothing is runnable (also the reaction time to new alerts).
        context: ``Context`` fields for every incident (policy, approval, budgets ...); ``db`` is the store's.
        journal_s: seconds between change-journal polls of each watched namespace (0: keep no journal).
    """

    workers: int = 2
    lease_s: float = 60.0
    idle_s: float = 0.5
    journal_s: float = POLL_S
    context: dict[str, Any] = field(default_factory=dict)


class WorkerPool:
    """Threads that claim incidents from the store and run their graphs."""

    def __init__(self, store: IntakeStore, clusters: ClusterProvider, metrics: ServeMetrics, notifier: Notifier,
                 settings: WorkerSettings, holder: str | None = None) -> None:
        self.store, self.clusters, self.metrics, self.notifier = store, clusters, metrics, notifier
        self.settings = settings
        self.holder = holder or default_holder()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.busy = 0
        watched = tuple(settings.context.get("namespaces") or ()) or (clusters.default_namespace,)
        self.watcher = JournalWatcher(clusters, watched, settings.journal_s) if settings.journal_s > 0 else None

    def start(self) -> None:
        for i in range(self.settings.workers):  # 0: an intake-only process (other processes run graphs)
            t = threading.Thread(target=self._loop, args=(f"{self.holder}/w{i}",), name=f"stratus-worker-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        if self.watcher is not None and self.settings.workers:  # only a process that runs graphs needs one
            self.watcher.start()

    def wake(self) -> None:
        """Something became runnable (an alert, an approval): stop idling."""
        self._wake.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop claiming; wait up to ``timeout_s`` for running graphs (an unfinished one resumes later)."""
        self._stop.set()
        self._wake.set()
        if self.watcher is not None:
            self.watcher.stop()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def _loop(self, holder: str) -> None:
        while not self._stop.is_set():
            try:
                claim = self.store.claim(holder, self.settings.lease_s)
            except Exception as exc:  # the database may be restarting: retry after the idle wait
                log.warning("claim failed: %s", exc)
                claim = None
            if claim is None:
                self._wake.wait(self.settings.idle_s)
                self._wake.clear()
                continue
            self.busy += 1
            try:
                self.run(claim, holder)
            finally:
                self.busy -= 1

    def run(self, claim: Claim, holder: str) -> None:
        """Run (or resume) one claimed incident to its end or its next approval, renewing the lease."""
        t0 = time.perf_counter()
        stop_renewing = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(claim, holder, stop_renewing), daemon=True)
        renewer.start()
        try:
            result = self._invoke(claim)
        except Exception as exc:  # a graph that cannot run at all is closed as failed, never retried forever
            log.exception("incident %s failed", claim.incident_id)
            stop_renewing.set()
            self.store.finish(claim, holder, "failed", {}, error=f"{type(exc).__name__}: {exc}")
            self.metrics.incidents.labels("failed").inc()
            self.notifier.notify(claim.incident_id, "escalate", {"namespace": claim.namespace,
                                                                 "summary": f"STRATUS could not run: {exc}"})
            return
        finally:
            stop_renewing.set()
            renewer.join(5)
            self.metrics.processing.observe(time.perf_counter() - t0)
        if result.interrupted:
            self.store.wait_for_approval(claim, holder, result.interrupt)
            return
        detail = {"transactions": len(result.transactions), "rollbacks": result.rollbacks,
                  "summary": result.summary, "namespace": claim.namespace}
        if self.store.finish(claim, holder, result.outcome, detail):
            self.metrics.record_incident(result.outcome, result.transactions, result.llm_tokens)
            event = {"resolved": "resolve", "escalated": "escalate"}.get(result.outcome)
            if event:
                self.notifier.notify(claim.incident_id, event, detail)

    def _invoke(self, claim: Claim) -> IncidentResult:
        ctx = Context(**{**self.settings.context, "db": self.store.db, "namespaces": (claim.namespace,)})
        with open_checkpointer(self.store.db) as saver, self.clusters.session(claim.namespace) as cluster:
            journal = self.watcher.journal(claim.namespace) if self.watcher is not None else None
            return invoke_graph(claim.alerts, cluster=cluster, context=ctx, thread_id=claim.incident_id,
                                checkpointer=saver, resume=claim.resume, journal=journal)

    def _renew(self, claim: Claim, holder: str, stop: threading.Event) -> None:
        while not stop.wait(self.settings.lease_s / 3):
            try:
                if not self.store.renew(claim, holder, self.settings.lease_s):
                    log.error("incident %s: lease lost to another process", claim.incident_id)
                    return
            except Exception as exc:  # keep trying until the lease would lapse
                log.warning("incident %s: lease renewal failed: %s", claim.incident_id, exc)
