"""Helpers shared by the ``stratus serve`` tests (conftest modules are not importable by name).

The PostgreSQL helpers (``pg_reachable`` from testkit) skip a test when no server answers at ``STRATUS_TEST_PG_DSN``;
``STRATUS_REQUIRE_PG=1`` (CI) turns that skip into a failure, as in tests/test_postgres.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
from testkit import PG_DSN, eventually, pg_reachable  # noqa: F401  (pg_reachable re-exported)

DSN = PG_DSN
TABLES = ("serve_incidents", "serve_alerts", "serve_events", "serve_namespaces", "serve_notifications")


def pg_reset() -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        for t in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {t}")


def until(check: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    """``eventually`` polling every 50 ms (the service's workers react within milliseconds)."""
    return eventually(check, timeout_s, what, tick=lambda: time.sleep(0.05))
