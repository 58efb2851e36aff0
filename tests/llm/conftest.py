"""Fixtures for the LLM-path tests: faulted twins from scenario files and scripted-model helpers.

Nothing here talks to a network except ``test_openai_server.py``'s loopback server. Scripted replies
are callables of the conversation, keyed on which agent's system prompt is present, so a script reads
as "what this agent answers", not as a brittle global call order.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flavours import FLAVOURS, Rejection, Server, serve
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from stratus.bench.runner import prepare
from stratus.bench.scenarios import load_scenario
from stratus.twin import tsdb as tsdb_module
from stratus.twin.cluster import TwinCluster
from stratus.twin.world import World

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
NAMESPACE = "test-hotel-reservation"


def agent_of(messages: list[BaseMessage]) -> str:
    """detection | diagnosis | mitigation | nl2kubectl | other, from the system prompt."""
    system = next((str(m.content) for m in messages if isinstance(m, SystemMessage)), "")
    for marker, name in (("Detection agent", "detection"), ("Diagnosis agent", "diagnosis"),
                         ("Mitigation agent", "mitigation"), ("Translate one operator intent", "nl2kubectl")):
        if marker in system:
            return name
    return "other"


def first_human(messages: list[BaseMessage]) -> str:
    return next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")


def turn_index(messages: list[BaseMessage]) -> int:
    """How many model replies this agent turn already has (0 on the first call of a turn)."""
    return sum(1 for m in messages if isinstance(m, AIMessage))


def text_of(messages: list[BaseMessage]) -> str:
    """Everything a model could read in a conversation: contents and tool-call arguments."""
    parts = []
    for m in messages:
        parts.append(str(m.content))
        for tc in getattr(m, "tool_calls", None) or []:
            parts.append(repr(tc.get("args")))
    return "\n".join(parts)


def tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


class Faulted:
    """A twin with one scenario's faults injected and its alerts firing."""

    def __init__(self, world: World, cluster: TwinCluster, alerts: list[dict[str, Any]]) -> None:
        self.world, self.cluster, self.alerts = world, cluster, alerts
        self.namespace = world.namespace


_prepared: dict[str, World] = {}


def faulted(name: str, before_warm_up: Callable[[World], None] | None = None) -> Faulted:
    """Build the scenario ``scenarios/<name>.yaml`` as the bench runner does (warm-up, inject, alerts).

    Without a hook the prepared world is cached per scenario and each caller gets an independent deep
    copy (with its own TSDB identity, as in tests/conftest.py)."""
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    if before_warm_up is None:
        if name not in _prepared:
            _prepared[name] = prepare(sc)[0]
        world = copy.deepcopy(_prepared[name])
        world.tsdb.uid = next(tsdb_module._db_ids)
        cluster = TwinCluster(world)
    else:
        # the bench's prepare() with a hook: objects added before warm-up are part of the steady state
        from stratus.bench.noise import add_noise
        from stratus.twin.faults import inject

        world = World(sc.app, seed=sc.seed, namespace=sc.namespace)
        before_warm_up(world)
        cluster = TwinCluster(world)
        world.warm_up(300.0)
        start = world.clock.now
        for f in sc.faults:
            inject(world, f.type, f.target, f.params)
        add_noise(world, sc.noise, sc.seed)
        while world.clock.now - start < 600.0:
            world.advance(15.0)
            if [a for a in world.firing() if a["labels"].get("alertname") != "Watchdog"]:
                break
    alerts = [a for a in world.firing() if a["labels"].get("alertname") != "Watchdog"]
    return Faulted(world, cluster, alerts)


@pytest.fixture
def scenario_twin() -> Callable[..., Faulted]:
    """``scenario_twin("hotel-geo-service-target-port")`` -> a faulted twin with firing alerts."""
    return faulted


@pytest.fixture(scope="session")
def llm_helpers() -> Any:
    """The helpers above, for test modules (conftest is not importable by name)."""
    class Helpers:
        NAMESPACE = NAMESPACE
        SCENARIOS = SCENARIOS
        agent_of = staticmethod(agent_of)
        first_human = staticmethod(first_human)
        turn_index = staticmethod(turn_index)
        text_of = staticmethod(text_of)
        tool_messages = staticmethod(tool_messages)
        faulted = staticmethod(faulted)
    return Helpers


@pytest.fixture
def flavour_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Server]]:
    for var in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL", "OPENAI_API_VERSION", "HTTP_PROXY",
                "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "STRATUS_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    stack: list[Iterator[Server]] = []

    def start(name: str, check: Callable[..., Rejection | None] | None = None) -> Server:
        gen = serve(Server(FLAVOURS[name], check))
        stack.append(gen)
        return next(gen)

    yield start
    for gen in stack:
        next(gen, None)
