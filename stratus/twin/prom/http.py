"""The twin's Prometheus and Alertmanager over HTTP: the read API a real Prometheus and Alertmanager serve.

:func:`serve_prometheus` serves any *source* with ``.tsdb`` (:class:`~stratus.twin.tsdb.TSDB`),
``.rules`` (:class:`~.rules.RuleEvaluator`) and ``.clock.now`` (a World) on a threaded stdlib server:

* Prometheus ``/api/v1/query``, ``/api/v1/query_range`` (GET, or POST form), ``/api/v1/alerts``,
  ``/api/v1/rules``, ``/api/v1/labels``, ``/api/v1/label/<name>/values``, ``/api/v1/series``,
  ``/-/ready`` and ``/-/healthy``; failures in Prometheus' error envelope (``status``, ``errorType``,
  ``error``) with its status codes (400 bad data, 422 execution error).
* Alertmanager API v2 ``GET /api/v2/alerts`` (``active``, ``silenced``, ``inhibited``, ``filter``).
* ``GET /metrics``: the source's current telemetry in the text exposition format (:mod:`.exposition`).

Queries default to the source's clock, not the wall clock, so a client sees the twin's "now". Requests
that read the telemetry store and the alerts hold the store's own lock (``source.tsdb.lock``, which
scrapes and rule evaluations hold), so a query never sees half a scrape yet never waits for a whole
simulation step; ``/metrics`` reads the simulation itself and holds ``lock``: pass the lock the
simulation loop holds while it steps the world.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .exposition import CONTENT_TYPE, metrics_page
from .query import evaluate, evaluate_range, select_series
from .rules import parse_duration
from .value import PromQLError

MAX_BODY_BYTES = 1 << 20
JSON = "application/json"

Params = dict[str, list[str]]
Reply = tuple[int, bytes, str]


def _ok(data: Any) -> Reply:
    return 200, json.dumps({"status": "success", "data": data}).encode(), JSON


def _one(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _number(name: str, raw: str, what: str, other: Callable[[str], float]) -> float:
    """A float, else ``other``'s reading of ``raw`` (RFC 3339, a duration), finite, as Prometheus parses them."""
    try:
        value = float(raw)
    except ValueError:
        try:
            value = other(raw)
        except ValueError:
            raise PromQLError(f'invalid parameter "{name}": cannot parse "{raw}" to a valid {what}') from None
    if not math.isfinite(value):
        raise PromQLError(f'invalid parameter "{name}": cannot parse "{raw}" to a valid {what}')
    return value


def parse_time(params: Params, name: str, default: float) -> float:
    """A Prometheus API time parameter: unix seconds (float) or RFC 3339."""
    raw = _one(params, name)
    if raw is None or raw == "":
        return default
    return _number(name, raw, "timestamp", lambda r: datetime.fromisoformat(r.replace("Z", "+00:00")).timestamp())


def _duration(params: Params, name: str) -> float:
    raw = _one(params, name)
    if raw is None or raw == "":
        raise PromQLError(f'invalid parameter "{name}": cannot parse "" to a valid duration')
    return _number(name, raw, "duration", parse_duration)


def _query(source: Any, params: Params) -> Reply:
    return _ok(evaluate(source.tsdb, _one(params, "query") or "", parse_time(params, "time", source.clock.now)))


def _query_range(source: Any, params: Params) -> Reply:
    start = parse_time(params, "start", math.nan)
    end = parse_time(params, "end", math.nan)
    for name, t in (("start", start), ("end", end)):
        if math.isnan(t):
            raise PromQLError(f'invalid parameter "{name}": cannot parse "" to a valid timestamp')
    return _ok(evaluate_range(source.tsdb, _one(params, "query") or "", start, end, _duration(params, "step")))


def _alerts(source: Any, params: Params) -> Reply:
    return _ok({"alerts": source.rules.prometheus_alerts()})


def _rules(source: Any, params: Params) -> Reply:
    data = source.rules.prometheus_rules()
    if _one(params, "type") == "record":  # the twin keeps alerting rules only
        data = {"groups": [{**g, "rules": []} for g in data["groups"]]}
    return _ok(data)


def _labels(source: Any, params: Params) -> Reply:
    return _ok(source.tsdb.label_names())


def _series(source: Any, params: Params) -> Reply:
    matches = params.get("match[]") or []
    if not matches:
        raise PromQLError("no match[] parameter provided")
    start = parse_time(params, "start", -math.inf)
    end = parse_time(params, "end", math.inf)
    seen: dict[tuple, dict[str, str]] = {}
    for m in matches:
        for labels in select_series(source.tsdb, m, start, end):
            seen.setdefault(tuple(sorted(labels.items())), labels)
    return _ok([seen[k] for k in sorted(seen)])


_MATCHER_RE = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def _matcher(text: str) -> Callable[[dict[str, str]], bool]:
    m = _MATCHER_RE.match(text.strip().strip("{}"))
    if not m:
        raise ValueError(f'bad matcher format: {text}: write name="value" (or !=, =~, !~)')
    name, op, value = m.group(1), m.group(2), m.group(3).replace('\\"', '"')
    if op in ("=", "!="):
        return lambda lab: (lab.get(name, "") == value) == (op == "=")
    rx = re.compile(value)
    return lambda lab: bool(rx.fullmatch(lab.get(name, ""))) == (op == "=~")


def _am_alerts(source: Any, params: Params) -> Reply:
    try:
        matchers = [_matcher(f) for f in params.get("filter") or []]
    except (ValueError, re.error) as exc:
        return 400, json.dumps(str(exc)).encode(), JSON
    flags = {}
    for name in ("active", "silenced", "inhibited", "unprocessed"):
        raw = (_one(params, name) or "true").lower()
        if raw not in ("true", "false"):
            return 400, json.dumps(f"{name} in query should be a boolean, got {raw!r}").encode(), JSON
        flags[name] = raw == "true"
    # the twin has no silences, inhibitions or processing delay: every alert it holds is active
    items = source.rules.alertmanager_alerts() if flags["active"] else []
    items = [a for a in items if all(m(a["labels"]) for m in matchers)]
    return 200, json.dumps(items).encode(), JSON


def _metrics(source: Any, params: Params) -> Reply:
    return 200, metrics_page(source), CONTENT_TYPE


def _text(body: str) -> Callable[[Any, Params], Reply]:
    return lambda source, params: (200, body.encode(), "text/plain; charset=utf-8")


ROUTES: dict[str, Callable[[Any, Params], Reply]] = {
    "/api/v1/query": _query,
    "/api/v1/query_range": _query_range,
    "/api/v1/alerts": _alerts,
    "/api/v1/rules": _rules,
    "/api/v1/labels": _labels,
    "/api/v1/series": _series,
    "/api/v2/alerts": _am_alerts,
    "/metrics": _metrics,
    "/-/ready": _text("Prometheus Server is Ready.\n"),
    "/-/healthy": _text("Prometheus Server is Healthy.\n"),
}
LIVE_ROUTES = frozenset({"/metrics"})
"""Routes that read the simulation's current state rather than the telemetry store."""
POST_ROUTES = frozenset({"/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels"})
_LABEL_VALUES_RE = re.compile(r"^/api/v1/label/([^/]+)/values$")


def handle(source: Any, method: str, path: str, params: Params) -> Reply:
    """Answer one request (no I/O: the server and tests call this)."""
    route = ROUTES.get(path)
    lv = _LABEL_VALUES_RE.match(path)
    if route is None and lv is None:
        return 404, b"404 page not found\n", "text/plain; charset=utf-8"
    if method == "POST" and path not in POST_ROUTES:
        return 405, b"Method Not Allowed\n", "text/plain; charset=utf-8"
    try:
        if lv is not None:
            return _ok(source.tsdb.label_values(lv.group(1)))
        assert route is not None
        return route(source, params)
    except PromQLError as e:
        return e.http_status, json.dumps(e.to_api()).encode(), JSON


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query, keep_blank_values=True)
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True  # the unread body would be taken for the next request
                self._send(413, json.dumps(PromQLError(f"request body over {MAX_BODY_BYTES} bytes").to_api()).encode(),
                           JSON)
                return
            body = self.rfile.read(length).decode("utf-8", "replace")
            if self.headers.get_content_type() == "application/x-www-form-urlencoded":
                for k, v in parse_qs(body, keep_blank_values=True).items():
                    params.setdefault(k, []).extend(v)
        source = self.server.source
        with self.server.lock if url.path in LIVE_ROUTES else source.tsdb.lock:
            status, payload, ctype = handle(source, method, url.path, params)
        self._send(status, payload, ctype)

    def _send(self, status: int, payload: bytes, ctype: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # the client gave up first (a scraper's timeout on a busy machine): nothing is left to answer,
            # and a traceback per timed-out scrape would bury the real errors
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's naming)
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (base class signature)
        """Quiet: the twin's server answers many polls; errors reach the client in the body."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], source: Any, lock: Any) -> None:
        super().__init__(addr, _Handler)
        self.source = source
        self.lock = lock


class PrometheusServer:
    """A running server: ``url`` (``http://host:port``) and :meth:`close`."""

    def __init__(self, source: Any, host: str, port: int, lock: Any) -> None:
        self._server = _Server((host, port), source, lock)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="twin-prometheus-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port (waits up to 5 s for the serving thread)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_prometheus(source: Any, host: str = "127.0.0.1", port: int = 0, lock: Any = None) -> PrometheusServer:
    """Serve ``source``'s Prometheus and Alertmanager APIs and ``/metrics`` (port 0: any free port).

    Args:
        source: an object with ``.tsdb``, ``.rules`` and ``.clock.now`` (a World).
        host: address to bind (loopback by default).
        port: port to bind; 0 picks a free one (read it from the returned server's ``url``).
        lock: held while ``/metrics`` reads ``source``'s current state; the simulation loop should hold it
            while stepping (the API's other requests hold ``source.tsdb.lock``).

    Returns:
        The running server; call ``close()`` to stop it.
    """
    return PrometheusServer(source, host, port, lock if lock is not None else threading.RLock())
