"""Outbound notifications of ``stratus serve``: detect, resolve and escalate, to a webhook and to Slack.

Each (incident, event) is sent at most once, across every process sharing the store: the store records
the notice before it is sent (``IntakeStore.first_notice``), so a re-sent alert group or a resumed
incident does not notify again. Sending happens on one background thread with a bounded queue and
retries (tenacity), so a slow receiver never delays a 202 or a graph run. A notice lost to a crash
between recording and sending is not sent again: at most once, never twice.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from stratus.serve.metrics import ServeMetrics
from stratus.serve.store import IntakeStore

log = logging.getLogger("stratus.serve")

EVENTS = ("detect", "resolve", "escalate")
QUEUE_MAX = 1000
ATTEMPTS = 4


class Notifier:
    """Sends incident events to a generic JSON webhook and/or a Slack-compatible incoming webhook.

    Args:
        store: where sent notices are recorded (deduplication).
        metrics: counts sent and failed notices.
        webhook_url: receives ``{"version": "1", "event", "incident": {...}}``.
        slack_url: receives ``{"text": ...}`` (Slack incoming webhooks and compatible chat servers).
        timeout_s: per request.
    """

    def __init__(self, store: IntakeStore, metrics: ServeMetrics, webhook_url: str | None = None,
                 slack_url: str | None = None, timeout_s: float = 5.0, backoff_s: float = 0.5) -> None:
        self.store, self.metrics = store, metrics
        self.webhook_url, self.slack_url = webhook_url, slack_url
        self.backoff_s = backoff_s
        self._queue: queue.Queue[tuple[str, str, dict[str, Any]] | None] = queue.Queue(QUEUE_MAX)
        self._client = httpx.Client(timeout=timeout_s)
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url or self.slack_url)

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stratus-notify", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (within ``timeout_s``), then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None
        self._client.close()

    def notify(self, incident_id: str, event: str, detail: dict[str, Any]) -> None:
        """Queue ``event`` for the incident; dropped (and counted) when the queue is full."""
        if not self.enabled:
            return
        try:
            self._queue.put_nowait((incident_id, event, detail))
        except queue.Full:
            self.metrics.notifications.labels(event, "dropped").inc()
            log.warning("notification queue full: %s of %s dropped", event, incident_id)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            incident_id, event, detail = item
            try:
                if not self.store.first_notice(incident_id, event):
                    self.metrics.notifications.labels(event, "duplicate").inc()
                    continue
                self._send(incident_id, event, detail)
                self.metrics.notifications.labels(event, "sent").inc()
            except Exception as exc:  # a receiver down must not stop later notices
                self.metrics.notifications.labels(event, "failed").inc()
                log.warning("notification %s of %s failed after %d attempts: %s", event, incident_id, ATTEMPTS, exc)

    def _send(self, incident_id: str, event: str, detail: dict[str, Any]) -> None:
        @retry(stop=stop_after_attempt(ATTEMPTS), wait=wait_exponential(multiplier=self.backoff_s, max=10),
               retry=retry_if_exception_type(httpx.HTTPError), reraise=True)
        def post(url: str, body: dict[str, Any]) -> None:
            self._client.post(url, json=body).raise_for_status()

        if self.webhook_url:
            post(self.webhook_url, {"version": "1", "event": event, "incident": {"id": incident_id, **detail}})
        if self.slack_url:
            post(self.slack_url, {"text": slack_text(incident_id, event, detail)})


def slack_text(incident_id: str, event: str, detail: dict[str, Any]) -> str:
    """One line for a chat channel: what happened to which incident, in which namespace."""
    verb = {"detect": ":rotating_light: detected", "resolve": ":white_check_mark: resolved",
            "escalate": ":sos: escalated to a human"}[event]
    ns = detail.get("namespace", "?")
    summary = detail.get("summary") or ", ".join(detail.get("alerts") or [])
    return f"STRATUS incident {incident_id} in {ns} {verb}" + (f": {summary}" if summary else "")
