"""Fixtures for ``stratus serve``: an app over a twin with a fault, run in-process with its lifespan.

``serve_app(...)`` builds the app on a fresh SQLite store in ``tmp_path`` with the twin's alert source
off, so every alert comes through ``POST /api/v1/alerts``; ``twin_payload`` is the Alertmanager webhook
the twin's own rule evaluator produces for the fault. Polling helpers are bounded in time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import DSN, pg_reachable, pg_reset
from starlette.testclient import TestClient

from stratus.serve import ServeConfig, TwinProvider, WorkerSettings, create_app
from stratus.twin.cluster import TwinCluster

FAULT = "scale_to_zero:rate"


def faulty_twin(twin_factory: Callable[..., TwinCluster]) -> TwinProvider:
    """A twin with ``FAULT`` injected and time advanced until its alert rules fire."""
    provider = TwinProvider(fault=FAULT, poll_s=0, cluster=twin_factory(seed=3))
    provider.cluster.wait(150)
    return provider


@pytest.fixture
def provider(twin_factory: Callable[..., TwinCluster]) -> TwinProvider:
    return faulty_twin(twin_factory)


@pytest.fixture
def twin_payload(provider: TwinProvider) -> dict[str, Any]:
    """The twin's webhook payload for the fault (alerts in the fault's namespace, firing)."""
    payloads = provider.evaluate()
    assert len(payloads) == 1 and payloads[0].status == "firing"
    return payloads[0].model_dump()


@pytest.fixture
def serve_app(tmp_path: Path, provider: TwinProvider) -> Iterator[Callable[..., TestClient]]:
    """``serve_app(token=..., workers=..., approval=...)`` -> a started TestClient (stopped at teardown)."""
    clients: list[TestClient] = []

    def make(token: str | None = None, workers: int = 1, approval: str = "never", db: str | None = None,
             **config: Any) -> TestClient:
        settings = WorkerSettings(workers=workers, idle_s=0.05, context={"approval": approval})
        app = create_app(ServeConfig(db=db or str(tmp_path / "serve.db"), token=token, workers=settings, **config),
                         provider)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def no_workers(serve_app: Callable[..., TestClient]) -> TestClient:
    """An app whose workers never claim anything (intake tests look at queued incidents)."""
    client = serve_app()
    client.app.state.pool.stop()  # type: ignore[attr-defined]
    return client


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store for the intake tests, once on SQLite and once on the real PostgreSQL (skipped without it)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    pg_reachable()
    pg_reset()
    return DSN
