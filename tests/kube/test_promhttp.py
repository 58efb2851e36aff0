"""KubeCluster's telemetry over HTTP: Prometheus and Alertmanager APIs served by a loopback test server."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from testkit import http_server, send_json

from stratus.cluster.base import ClusterError
from stratus.cluster.promhttp import PrometheusHTTP

VECTOR = {"resultType": "vector", "result": [{"metric": {"job": "api"}, "value": [1700000000, "1"]}]}
PROM_ALERTS = [
    {"labels": {"alertname": "KubePodCrashLooping", "namespace": "shop"}, "annotations": {"summary": "x"},
     "state": "firing", "activeAt": "2026-11-29T10:00:00Z", "value": "1"},
    {"labels": {"alertname": "Pending"}, "annotations": {}, "state": "pending", "activeAt": "2026-11-29T10:01:00Z"},
]
AM_ALERTS = [{"labels": {"alertname": "KubePodCrashLooping"}, "annotations": {}, "fingerprint": "abc",
              "startsAt": "2026-11-29T10:00:00Z", "endsAt": "2026-11-29T10:04:00Z",
              "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}}]


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, list[str]]]] = []
    flaky = 0  # answer this many requests with 503 first

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        _Handler.seen.append((url.path, parse_qs(url.query)))
        if _Handler.flaky > 0:
            _Handler.flaky -= 1
            return self._send(503, {"status": "error", "error": "overloaded"})
        q = parse_qs(url.query).get("query", [""])[0]
        if url.path in ("/api/v1/query", "/api/v1/query_range") and q == "bad(":
            return self._send(400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"})
        body: Any = {"/api/v1/query": {"status": "success", "data": VECTOR},
                     "/api/v1/query_range": {"status": "success", "data": {"resultType": "matrix", "result": []}},
                     "/api/v1/alerts": {"status": "success", "data": {"alerts": PROM_ALERTS}},
                     "/api/v2/alerts": AM_ALERTS}.get(url.path)
        self._send(200 if body is not None else 404, body if body is not None else {"error": "no route"})

    def _send(self, code: int, body: Any) -> None:
        send_json(self, code, body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen, _Handler.flaky = [], 0
    with http_server(_Handler) as port:
        yield f"http://127.0.0.1:{port}"


def test_query_and_range_send_the_prometheus_parameters(server: str) -> None:
    prom = PrometheusHTTP(server + "/")
    assert prom.query("up", at=1700000000.5) == VECTOR
    assert _Handler.seen[-1] == ("/api/v1/query", {"query": ["up"], "time": ["1700000000.5"]})
    assert prom.query_range("rate(x[1m])", 10, 70, 15)["resultType"] == "matrix"
    assert _Handler.seen[-1][1] == {"query": ["rate(x[1m])"], "start": ["10"], "end": ["70"], "step": ["15"]}


def test_bad_query_is_a_cluster_error_with_prometheus_message(server: str) -> None:
    with pytest.raises(ClusterError, match="parse error at char 5"):
        PrometheusHTTP(server).query("bad(")


def test_503_is_retried_then_succeeds(server: str) -> None:
    _Handler.flaky = 2
    assert PrometheusHTTP(server).query("up") == VECTOR
    assert len(_Handler.seen) == 3


def test_alerts_from_alertmanager_pass_through(server: str) -> None:
    assert PrometheusHTTP(server, alertmanager_url=server).alerts() == AM_ALERTS
    assert _Handler.seen[-1] == ("/api/v2/alerts", {"active": ["true"]})


def test_alerts_from_prometheus_keep_only_firing_in_alertmanager_shape(server: str) -> None:
    alerts = PrometheusHTTP(server).alerts()
    assert [a["labels"]["alertname"] for a in alerts] == ["KubePodCrashLooping"]
    assert alerts[0]["startsAt"] == "2026-11-29T10:00:00Z" and alerts[0]["status"]["state"] == "active"


def test_no_prometheus_url_says_how_to_configure() -> None:
    with pytest.raises(ClusterError, match="prometheus_url"):
        PrometheusHTTP().query("up")
    assert PrometheusHTTP().alerts() == []
