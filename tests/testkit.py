"""Helpers for the suites that run real servers and controllers: bounded polling, loopback ports,
loopback HTTP stand-ins (``http_server``), stopping a started program by PID, and the test PostgreSQL
(``PG_DSN``, ``pg_reachable``).

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, so any test module can ``from testkit import ...``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest


def eventually(check: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition",
               tick: Callable[[], Any] = lambda: time.sleep(0.2)) -> Any:
    """Poll ``check`` until it returns something truthy, for at most ``timeout_s`` seconds.

    Servers and controllers work asynchronously, so an exception from ``check`` (the object or series
    does not exist yet) counts as "not yet". ``tick`` runs between polls: a sleep by default; the twin
    advances its simulated clock instead.

    Raises:
        AssertionError: naming ``what`` and the last result or exception when time runs out.
    """
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # not there yet: keep polling
            last = exc
        tick()
    raise AssertionError(f"{what} not reached within {timeout_s:.0f} s (last: {last!r})")


def free_port() -> int:
    """A loopback TCP port free at the time of asking (servers under test bind it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PG_DSN = os.environ.get("STRATUS_TEST_PG_DSN", "postgresql://stratus:stratus@127.0.0.1:5432/stratus_test")


def pg_reachable() -> None:
    """Skip the calling test when no PostgreSQL answers at ``PG_DSN``; fail instead under
    ``STRATUS_REQUIRE_PG=1`` (CI starts the server, so a skip there would hide a broken setup)."""
    try:
        psycopg.connect(PG_DSN, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        why = f"PostgreSQL not reachable at DSN {PG_DSN}: start it or set STRATUS_TEST_PG_DSN ({exc})"
        if os.environ.get("STRATUS_REQUIRE_PG") == "1":
            pytest.fail(why + "; STRATUS_REQUIRE_PG=1 requires it", pytrace=False)
        pytest.skip(why)


def stop_process(proc: subprocess.Popen[Any], grace_s: float = 15.0) -> None:
    """End a program this test session started, by its PID: SIGTERM, then SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve ``handler`` on a free loopback port in a thread; yields the port and stops it on exit."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer ``handler``'s request with ``body`` as JSON."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
