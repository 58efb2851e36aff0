"""The ASGI app of ``stratus serve``: Alertmanager intake, the incident API, health and metrics.

Routes (all JSON):
    POST /api/v1/alerts                       Alertmanager webhook (version 4) -> 202 {incidents: [...]} once
                                              committed; 503 when the store refused it (nothing kept)
    GET  /api/v1/incidents                    newest first; ?state=queued|running|waiting|done&limit=N
    GET  /api/v1/incidents/{id}               status, alerts, timeline, transactions with TNR verdicts
    POST /api/v1/incidents/{id}/approval      answer a plan waiting for a human: approve, reject or edit
    GET  /healthz                             liveness and readiness (the store answers); never needs a token
    GET  /metrics                             Prometheus text format

With a token configured every route but ``/healthz`` needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from stratus.serve.clusters import ClusterProvider
from stratus.serve.incidents import incident_view, row_view
from stratus.serve.metrics import ServeMetrics
from stratus.serve.notify import Notifier
from stratus.serve.payload import PayloadError, WebhookPayload, parse_payload
from stratus.serve.store import Accepted, IntakeStore
from stratus.serve.workers import WorkerPool, WorkerSettings

log = logging.getLogger("stratus.serve")
STATES = ("queued", "running", "waiting", "done")


@dataclass
class ServeConfig:
    """Everything ``stratus serve`` is configured with (the CLI's options, or a test's)."""

    db: str
    token: str | None = None
    max_body_bytes: int = 1 << 20
    notify_webhook: str | None = None
    notify_slack: str | None = None
    holder: str | None = None
    workers: WorkerSettings = field(default_factory=WorkerSettings)


class Approval(BaseModel):
    """The body of ``POST /api/v1/incidents/{id}/approval``: a decision, or an edited plan."""

    decision: str | None = None
    edit: list[str] | None = None

    @model_validator(mode="after")
    def _one(self) -> Approval:
        if (self.decision is None) == (self.edit is None):
            raise ValueError("give exactly one of 'decision' (approve or reject) and 'edit' (kubectl commands)")
        if self.decision is not None and self.decision not in ("approve", "reject"):
            raise ValueError(f"decision must be approve or reject, not {self.decision!r}")
        if self.edit is not None and not self.edit:
            raise ValueError("edit must list at least one kubectl command")
        return self

    def resume(self) -> Any:
        return self.decision if self.edit is None else {"edit": self.edit}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class _TooLarge(Exception):
    pass


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(config: ServeConfig, clusters: ClusterProvider) -> Starlette:
    """Build the app; its lifespan starts and stops the workers, the notifier and the twin's alert source."""
    store = IntakeStore(config.db)
    metrics = ServeMetrics(store.queue_depth)
    notifier = Notifier(store, metrics, config.notify_webhook, config.notify_slack)
    pool = WorkerPool(store, clusters, metrics, notifier, config.workers, holder=config.holder)

    def accepted_by(payload: WebhookPayload, accepted: Accepted) -> None:
        metrics.alerts.labels("firing").inc(accepted.firing)
        metrics.alerts.labels("resolved").inc(accepted.resolved)
        if accepted.created and accepted.incident_id:
            pool.wake()
            notifier.notify(accepted.incident_id, "detect", {
                "namespace": payload.namespace(clusters.default_namespace),
                "alerts": sorted({a.name for a in payload.alerts if a.status == "firing"})})

    def accept(payload: WebhookPayload) -> Accepted:
        accepted = store.accept(payload, clusters.default_namespace)
        accepted_by(payload, accepted)
        return accepted

    def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def check(request: Request) -> Response:
            if config.token:
                header = request.headers.get("authorization", "")
                scheme, _, given = header.partition(" ")
                if scheme.lower() != "bearer" or not given:
                    metrics.payloads.labels("unauthorized").inc()
                    return JSONResponse({"error": "missing bearer token: send the header 'Authorization: Bearer "
                                                  "<token>' (the token stratus serve was started with)"},
                                        status_code=401, headers={"WWW-Authenticate": 'Bearer realm="stratus"'})
                if not hmac.compare_digest(given.strip().encode(), config.token.encode()):
                    metrics.payloads.labels("unauthorized").inc()
                    return _error(403, "bearer token not accepted: it does not match the configured token "
                                       "(STRATUS_SERVE_TOKEN or --token)")
            return await handler(request)
        return check

    async def post_alerts(request: Request) -> Response:
        t0 = time.perf_counter()
        try:
            body = await _body(request, config.max_body_bytes)
        except _TooLarge:
            metrics.payloads.labels("too_large").inc()
            return _error(413, f"payload larger than the limit of {config.max_body_bytes} bytes (--max-body); "
                               "lower max_alerts in the Alertmanager receiver or raise the limit")
        try:
            payload = parse_payload(body)
        except PayloadError as exc:
            metrics.payloads.labels("invalid").inc()
            status = 400 if exc.problems[0]["field"] == "(body)" else 422
            return _error(status, f"invalid Alertmanager webhook payload: {exc}", problems=exc.problems)
        try:  # the writer thread commits it with whatever else arrived meanwhile; the loop goes on serving
            accepted = await asyncio.wrap_future(store.submit(payload, clusters.default_namespace))
        except Exception as exc:
            metrics.payloads.labels("not_stored").inc()
            log.warning("payload of group %s not stored: %s", payload.groupKey, exc)
            return _error(503, f"payload not stored, nothing of it was kept (send it again): {exc}")
        accepted_by(payload, accepted)
        metrics.payloads.labels("accepted").inc()
        metrics.intake_seconds.observe(time.perf_counter() - t0)
        incidents = [{"id": accepted.incident_id, "created": accepted.created}] if accepted.incident_id else []
        return JSONResponse({"status": "accepted", "incidents": incidents, "firing": accepted.firing,
                             "resolved": accepted.resolved}, status_code=202)

    async def list_incidents(request: Request) -> Response:
        state = request.query_params.get("state")
        if state is not None and state not in STATES:
            return _error(400, f"query parameter state must be one of {', '.join(STATES)}, not {state!r}")
        raw = request.query_params.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= 1000:
            return _error(400, f"query parameter limit must be an integer from 1 to 1000, not {raw!r}")
        rows = await run_in_threadpool(store.incidents, state, int(raw))
        return JSONResponse({"incidents": [row_view(r) for r in rows]})

    async def get_incident(request: Request) -> Response:
        incident_id = request.path_params["id"]
        view = await run_in_threadpool(incident_view, store, incident_id)
        if view is None:
            return _error(404, f"incident {incident_id!r} not found")
        return JSONResponse(view)

    async def post_approval(request: Request) -> Response:
        incident_id = request.path_params["id"]
        try:
            answer = Approval.model_validate_json(await _body(request, config.max_body_bytes))
        except _TooLarge:
            return _error(413, f"body larger than {config.max_body_bytes} bytes")
        except ValidationError as exc:
            return _error(422, "invalid approval: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in exc.errors()))
        row = await run_in_threadpool(store.incident, incident_id, 0)
        if row is None:
            return _error(404, f"incident {incident_id!r} not found")
        if not await run_in_threadpool(store.answer, incident_id, answer.resume()):
            return _error(409, f"incident {incident_id} is {row['state']}, not waiting for approval")
        pool.wake()
        return JSONResponse({"id": incident_id, "state": "queued", "answer": answer.resume()}, status_code=202)

    async def healthz(request: Request) -> Response:
        try:
            depth = await run_in_threadpool(store.queue_depth)
        except Exception as exc:
            return _error(503, f"store unreachable: {exc}")
        return JSONResponse({"status": "ok", "queue": depth, "workers": config.workers.workers, "busy": pool.busy})

    async def get_metrics(request: Request) -> Response:
        data = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        notifier.start()
        pool.start()
        clusters.start(accept)
        # what exists now (the graph, the twin, the libraries: hundreds of thousands of objects) lives as
        # long as the service; freezing it keeps the collector from walking it all in the middle of a request
        gc.freeze()
        try:
            yield
        finally:
            clusters.stop()
            await run_in_threadpool(pool.stop)
            notifier.stop()
            store.close()

    app = Starlette(routes=[
        Route("/api/v1/alerts", guarded(post_alerts), methods=["POST"]),
        Route("/api/v1/incidents", guarded(list_incidents), methods=["GET"]),
        Route("/api/v1/incidents/{id}", guarded(get_incident), methods=["GET"]),
        Route("/api/v1/incidents/{id}/approval", guarded(post_approval), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", guarded(get_metrics), methods=["GET"]),
    ], lifespan=lifespan)
    app.state.store, app.state.pool, app.state.metrics, app.state.notifier = store, pool, metrics, notifier
    return app
