"""Helpers shared by the ``stratus serve`` tests (conftest modules are not importable by name)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(check: Callable[[], Any], timeout_s: float = 60.0, what: str = "condition") -> Any:
    """Poll ``check`` (every 50 ms, at most ``timeout_s``) until it returns something truthy."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout_s:.0f} s (last: {last!r})")
