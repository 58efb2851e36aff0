"""The change journal of ``stratus serve``: a thread that watches each namespace between incidents.

Every ``WorkerSettings.journal_s`` seconds it polls one ``ChangeJournal`` per namespace (the context's
namespaces, the provider's default, and any namespace an incident came from) through the provider's
``session``, so the graph of an incident starts with what changed before its symptoms and the
last-known-healthy manifests (``invoke_graph(journal=...)``).
"""

from __future__ import annotations

import logging
import threading

from stratus.serve.clusters import ClusterProvider
from stratus.tools.journal import ChangeJournal

log = logging.getLogger("stratus.serve")


class JournalWatcher:
    """One change journal per namespace, polled by one background thread."""

    def __init__(self, clusters: ClusterProvider, namespaces: tuple[str, ...] | list[str], poll_s: float) -> None:
        self.clusters, self.poll_s = clusters, poll_s
        self._journals: dict[str, ChangeJournal] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        for ns in namespaces:
            self.journal(ns)

    def journal(self, namespace: str) -> ChangeJournal:
        """The namespace's journal (a new, empty one the first time a namespace is named)."""
        with self._lock:
            return self._journals.setdefault(namespace, ChangeJournal([namespace]))

    def poll(self) -> None:
        """Observe every watched namespace once; a failing namespace is logged and polled again next time."""
        with self._lock:
            journals = list(self._journals.items())
        for ns, j in journals:
            if self._stop.is_set():
                return
            try:
                with self.clusters.session(ns) as cluster:
                    j.observe(cluster)
            except Exception as exc:  # an API hiccup must not end the watch
                log.warning("change journal of namespace %s: poll failed: %s", ns, exc)

    def start(self) -> None:
        if self.poll_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="stratus-journal", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        self.poll()
        while not self._stop.wait(self.poll_s):
            self.poll()
