"""Outbound notifications: detect and resolve reach a generic webhook and a Slack-compatible one on a
loopback receiver, a failing receiver is retried, and each (incident, event) is sent once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from serve_helpers import until

from stratus.serve.metrics import ServeMetrics
from stratus.serve.notify import Notifier
from stratus.serve.store import IntakeStore


class Receiver:
    """A loopback HTTP server recording JSON bodies per path; the first ``fail_first`` posts get a 503."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: dict[str, list[Any]] = {}
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(503)
                else:
                    outer.bodies.setdefault(self.path, []).append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(fail_first=2) as r:
        yield r


def test_events_are_sent_once_with_retries(tmp_path: Any, receiver: Receiver) -> None:
    store = IntakeStore(str(tmp_path / "n.db"))
    metrics = ServeMetrics(store.queue_depth)
    notifier = Notifier(store, metrics, webhook_url=receiver.url + "/hook", slack_url=receiver.url + "/slack",
                        backoff_s=0.01)
    notifier.start()
    try:
        notifier.notify("inc-1", "detect", {"namespace": "ns-a", "alerts": ["DeploymentNotReady"]})
        notifier.notify("inc-1", "detect", {"namespace": "ns-a", "alerts": ["DeploymentNotReady"]})
        notifier.notify("inc-1", "resolve", {"namespace": "ns-a", "summary": "scaled rate back to 1"})
        until(lambda: len(receiver.bodies.get("/slack", [])) == 2, timeout_s=20, what="two Slack notices")
    finally:
        notifier.stop()
        store.close()
    hooks = receiver.bodies["/hook"]
    assert [(b["event"], b["incident"]["id"]) for b in hooks] == [("detect", "inc-1"), ("resolve", "inc-1")]
    assert hooks[0]["incident"]["alerts"] == ["DeploymentNotReady"]
    slack = [b["text"] for b in receiver.bodies["/slack"]]
    assert "inc-1 in ns-a" in slack[0] and "detected" in slack[0] and "scaled rate back to 1" in slack[1]
    text = metrics.registry.get_sample_value
    assert text("stratus_notifications_total", {"event": "detect", "result": "duplicate"}) == 1.0
    assert text("stratus_notifications_total", {"event": "resolve", "result": "sent"}) == 1.0


def test_a_receiver_that_stays_down_is_counted_not_fatal(tmp_path: Any) -> None:
    with Receiver(fail_first=100) as down:
        store = IntakeStore(str(tmp_path / "n.db"))
        metrics = ServeMetrics(store.queue_depth)
        notifier = Notifier(store, metrics, webhook_url=down.url + "/hook", backoff_s=0.001)
        notifier.start()
        notifier.notify("inc-2", "escalate", {"namespace": "ns-b"})
        sample = metrics.registry.get_sample_value
        until(lambda: sample("stratus_notifications_total", {"event": "escalate", "result": "failed"}) == 1.0,
              timeout_s=20, what="the failure counted")
        assert down.fail_first == 100 - 4  # four attempts, then given up
        notifier.stop()
        store.close()


def test_the_service_notifies_detect_and_resolve(serve_app: Any, twin_payload: dict[str, Any]) -> None:
    with Receiver() as r:
        client = serve_app(notify_webhook=r.url + "/hook")
        incident = client.post("/api/v1/alerts", json=twin_payload).json()["incidents"][0]["id"]
        client.post("/api/v1/alerts", json=twin_payload)  # a re-sent group notifies nothing new
        until(lambda: [b["event"] for b in r.bodies.get("/hook", [])] == ["detect", "resolve"], timeout_s=60,
              what="detect then resolve")
        assert {b["incident"]["id"] for b in r.bodies["/hook"]} == {incident}
        assert r.bodies["/hook"][1]["incident"]["namespace"] == "test-hotel-reservation"
