"""Worlds STRATUS can act on, behind the Cluster protocol (``base.Cluster``).

The graph receives its cluster through ``Context.cluster``. Entry points that cannot pass one (the
LangGraph dev server) register a default factory here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_default_factory: Callable[[], Any] | None = None
_default: Any = None


def set_default_factory(factory: Callable[[], Any]) -> None:
    global _default_factory, _default
    _default_factory, _default = factory, None


def default_cluster() -> Any:
    global _default
    if _default is None:
        if _default_factory is None:
            raise RuntimeError("no cluster given: pass Context(cluster=...) or call invoke_graph(cluster=...)")
        _default = _default_factory()
    return _default
