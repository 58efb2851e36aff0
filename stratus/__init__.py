"""STRATUS: multi-agent SRE for Kubernetes with Transactional No-Regression.

Public API: ``invoke_graph``, ``build_graph``, ``IncidentResult``, ``Context``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["invoke_graph", "build_graph", "IncidentResult", "Context", "AlertValidationError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # imported lazily so `stratus --help` and the twin do not pay for LangGraph's import time
    if name in ("invoke_graph", "IncidentResult", "AlertValidationError"):
        from stratus import api

        return getattr(api, name)
    if name == "build_graph":
        from stratus.graph import build_graph

        return build_graph
    if name == "Context":
        from stratus.context import Context

        return Context
    raise AttributeError(name)
