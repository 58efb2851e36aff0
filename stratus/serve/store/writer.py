"""The intake writer: one thread that commits webhook payloads in groups, so the event loop never waits
on the database and many payloads share one durable flush.

Callers hand in a payload and get a ``concurrent.futures.Future``; the HTTP handler awaits it and answers
202 only once it holds a result, that is once the transaction holding the payload has committed. While one
group commits the next one gathers in the queue; no timer waits for more, so a lone payload is written at
once and a burst is written in as few transactions as the disk allows.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from stratus.serve.payload import WebhookPayload
from stratus.serve.store.intake import Accepted

log = logging.getLogger("stratus.serve")
BATCH_MAX = 500  # payloads per transaction
IDLE_CHECK_S = 1.0  # how often an idle writer looks whether it was stopped

Item = tuple[WebhookPayload, str, "Future[Accepted]"]
Commit = Callable[[list[tuple[WebhookPayload, str]]], list[Accepted | Exception]]


class GroupWriter:
    """A thread running ``commit`` over the payloads queued meanwhile; ``submit`` queues one.

    Args:
        commit: writes a group in one transaction; returns per payload its result or its error.
        start: False for a writer that is closed at once (it refuses everything and needs no thread).
    """

    def __init__(self, commit: Commit, start: bool = True) -> None:
        self._commit = commit
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="stratus-intake-writer", daemon=True)
        if start:
            self._thread.start()

    def submit(self, payload: WebhookPayload, default_namespace: str) -> Future[Accepted]:
        """Queue a payload; the future holds what it did once committed, or the error that refused it."""
        fut: Future[Accepted] = Future()
        with self._lock:  # nothing queued after the sentinel: it would wait forever
            if self._closed:
                fut.set_exception(RuntimeError("the intake store is closed: the service is shutting down"))
                return fut
            self._queue.put((payload, default_namespace, fut))
        return fut

    def close(self, timeout_s: float = 30.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                first = self._queue.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                continue
            batch: list[Item] = []
            item: Item | None = first
            while item is not None:
                batch.append(item)
                if len(batch) >= BATCH_MAX:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stopping = item is None
            if batch:
                self._write(batch)

    def _write(self, batch: list[Item]) -> None:
        # a caller that gave up (its request was cancelled) is left out; the others can no longer be cancelled
        batch = [item for item in batch if item[2].set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            results = self._commit([(p, ns) for p, ns, _ in batch])
        except Exception as exc:  # the database is unreachable or the commit failed: nothing is stored
            log.warning("intake commit of %d payloads failed: %s", len(batch), exc)
            results = [exc] * len(batch)
        for (_, _, fut), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)
