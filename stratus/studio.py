"""The graph LangGraph Studio / ``langgraph dev`` serves (named in ``langgraph.json``).

Compiled without a checkpointer: the dev server brings its own persistence and exits if a graph has one
attached. Runs started from Studio cannot pass a cluster object, so the nodes act on the default cluster
registered here (``stratus.cluster.set_default_factory``):

- ``STRATUS_STUDIO_SCENARIO`` unset: the warmed-up, healthy HotelReservation twin of ``stratus.api``.
  Runs end with ``no_incident``; useful to look at the graph and the Context fields.
- ``STRATUS_STUDIO_SCENARIO=scenarios/hotel-geo-service-target-port.yaml`` (a scenario file; a path
  relative to the working directory or to the repository, or a bare scenario id from ``scenarios/``):
  the twin of that scenario built by ``stratus.bench.runner.prepare``, i.e. warmed up, faults injected
  and the clock advanced until alerts fire. The input ``{"alerts": []}`` is enough (Detection fills in
  the namespace and an incident id); add ``{"approval": "always"}`` to the run's context to see the
  human-approval interrupt with the plan's kubectl commands and their dry runs.

The scenario file is validated when this module is imported, so a bad path or field stops the dev server
at start with the scenario error; the twin itself is built lazily by the first run. There is one twin per
server process, shared by every thread: once a run commits a fix the fault stays fixed, so restart the
server for a fresh incident.

Run offline with ``LANGGRAPH_CLI_NO_ANALYTICS=1 LANGGRAPH_NO_VERSION_CHECK=1 LANGSMITH_TRACING=false
langgraph dev --no-browser --no-reload --port 2024`` (see README, "LangGraph Studio").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import stratus.api  # noqa: F401  (registers the healthy default twin; replaced below for a scenario)
from stratus.cluster import set_default_factory
from stratus.graph import build_graph

SCENARIO_ENV = "STRATUS_STUDIO_SCENARIO"
_REPO = Path(__file__).resolve().parent.parent


def resolve_scenario_path(name: str) -> Path:
    """The scenario file ``name`` refers to: as given, relative to the repository, or an id in scenarios/."""
    from stratus.bench.scenarios import ScenarioError

    raw = Path(name).expanduser()
    candidates = [raw]
    if not raw.is_absolute():
        candidates += [_REPO / raw, _REPO / "scenarios" / raw, _REPO / "scenarios" / f"{name}.yaml"]
    for c in candidates:
        if c.is_file():
            return c
    raise ScenarioError(f"{SCENARIO_ENV}={name}: no such scenario file (looked in the working directory, "
                        f"{_REPO} and {_REPO / 'scenarios'})")


def scenario_factory(name: str) -> Any:
    """A cluster factory building the twin of scenario ``name`` with its faults injected and alerts firing."""
    from stratus.bench.runner import prepare
    from stratus.bench.scenarios import load_scenario

    scenario = load_scenario(resolve_scenario_path(name))  # validated now: fail at server start

    def factory() -> Any:
        _world, cluster, _records, _base, _injected_at = prepare(scenario)
        return cluster

    factory.scenario = scenario  # type: ignore[attr-defined]
    return factory


def configure_from_env() -> str | None:
    """Register the scenario twin named by ``STRATUS_STUDIO_SCENARIO``; returns the scenario id, if any."""
    name = os.environ.get(SCENARIO_ENV, "").strip()
    if not name:
        return None
    factory = scenario_factory(name)
    set_default_factory(factory)
    return str(factory.scenario.id)


SCENARIO = configure_from_env()

graph = build_graph()

__all__ = ["graph", "SCENARIO", "configure_from_env", "resolve_scenario_path", "scenario_factory"]
