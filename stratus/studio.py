"""The graph LangGraph Studio / ``langgraph dev`` serves (named in ``langgraph.json``).

Compiled without a checkpointer: the dev server brings its own persistence and exits if a graph has one
attached. Importing ``stratus.api`` registers the default cluster factory (a warmed-up HotelReservation
twin), so runs started from Studio act on the embedded twin.
"""

from __future__ import annotations

import stratus.api  # noqa: F401  (registers the default twin cluster factory)
from stratus.graph import build_graph

graph = build_graph()

__all__ = ["graph"]
