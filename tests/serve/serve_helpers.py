"""Helpers shared by the ``stratus serve`` tests (conftest modules are not importable by name).

The PostgreSQL helpers skip a test when no server answers at ``STRATUS_TEST_PG_DSN``;
``STRATUS_REQUIRE_PG=1`` (CI) turns that skip into a failure, as in tests/test_postgres.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from testkit import eventually

DSN = os.environ.get("STRATUS_TEST_PG_DSN", "postgresql://stratus:stratus@127.0.0.1:5432/stratus_test")
TABLES = ("serve_incidents", "serve_alerts", "serve_events", "serve_namespaces", "serve_notifications")


def pg_reachable() -> None:
    try:
        psycopg.connect(DSN, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        why = f"PostgreSQL not reachable at DSN {DSN}: start it or set STRATUS_TEST_PG_DSN ({exc})"
        if os.environ.get("STRATUS_REQUIRE_PG") == "1":
            pytest.fail(why + "; STRATUS_REQUIRE_PG=1 requires it", pytrace=False)
        pytest.skip(why)


def pg_reset() -> None:
    with psycopg.connect(DSN, autocommit=True) as conn:
        for t in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {t}")


def until(check: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    """``eventually`` polling every 50 ms (the service's workers react within milliseconds)."""
    return eventually(check, timeout_s, what, tick=lambda: time.sleep(0.05))
