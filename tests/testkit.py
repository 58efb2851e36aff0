"""Helpers for the suites that run real servers and controllers: bounded polling and loopback ports.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, so any test module can ``from testkit import ...``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any


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
