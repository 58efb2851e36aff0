"""The Prometheus metrics ``stratus serve`` exposes on ``GET /metrics``.

Each app has its own registry (tests build many apps in one process). Counters count what this
process did; queue depth is read from the store at scrape time, so it is the same from every process
sharing a database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


def _depth_of(queue_depth: Callable[[], dict[str, int]], state: str) -> Callable[[], float]:
    return lambda: float(queue_depth().get(state, 0))


class ServeMetrics:
    """Counters, gauges and histograms of one ``stratus serve`` process."""

    def __init__(self, queue_depth: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.alerts = Counter("stratus_alerts_received", "Alerts received by POST /api/v1/alerts, by status.",
                              ["status"], registry=r)
        self.payloads = Counter("stratus_webhook_payloads", "Webhook payloads, by result (accepted, invalid, "
                                "too_large, unauthorized, not_stored).", ["result"], registry=r)
        self.intake_seconds = Histogram("stratus_intake_seconds", "Time to validate and persist one webhook "
                                        "payload (the time to 202).", registry=r,
                                        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1))
        self.incidents = Counter("stratus_incidents", "Incidents finished by this process, by outcome.",
                                 ["outcome"], registry=r)
        self.actions = Counter("stratus_actions", "Actions applied to the cluster in transactions.", registry=r)
        self.rollbacks = Counter("stratus_rollbacks", "Transactions undone.", registry=r)
        self.verdicts = Counter("stratus_tnr_verdicts", "TNR verdicts of transactions, by verdict.", ["verdict"],
                                registry=r)
        self.llm_tokens = Counter("stratus_llm_tokens", "LLM tokens spent by finished incidents.", registry=r)
        self.processing = Histogram("stratus_incident_processing_seconds", "Wall time of one graph run of an "
                                    "incident (claim to finish, wait or crash).", registry=r,
                                    buckets=(.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
        self.notifications = Counter("stratus_notifications", "Outbound notifications, by event and result.",
                                     ["event", "result"], registry=r)
        depth = Gauge("stratus_queue_depth", "Open incidents in the store, by state (queued, running, waiting).",
                      ["state"], registry=r)
        for state in ("queued", "running", "waiting"):
            depth.labels(state).set_function(_depth_of(queue_depth, state))

    def record_incident(self, outcome: str, transactions: list[dict[str, Any]], llm_tokens: int) -> None:
        """Count a finished incident from its transaction log."""
        self.incidents.labels(outcome).inc()
        for tx in transactions:
            self.actions.inc(sum(1 for r in tx.get("results") or [] if r.get("ok")))
            if tx.get("status") == "undone":
                self.rollbacks.inc()
            if tx.get("verdict"):
                self.verdicts.labels(tx["verdict"]).inc()
        self.llm_tokens.inc(max(0, llm_tokens))
