"""Shared fixtures: warmed-up twins (built once per seed, copied per test), a Context, and helpers.

A World takes about a second to build and warm up; tests get a deep copy of a cached warmed world so
a suite of a hundred twin tests stays fast. Copies are independent: each gets its own TSDB identity
(the PromQL engine caches selector results per ``TSDB.uid``, so a copy must not share its parent's).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from stratus.cluster.actions import Action
from stratus.context import Context
from stratus.tools.health import alert_component
from stratus.twin import tsdb as tsdb_module
from stratus.twin.cluster import TwinCluster
from stratus.twin.world import World

NAMESPACE = "test-hotel-reservation"
WARM_UP_S = 300.0
ALERT_POLL_S = 15.0
ALERT_WAIT_MAX_S = 600.0
IGNORED = {"Watchdog", "InfoInhibitor"}

_warmed: dict[int, World] = {}


def warmed_world(seed: int = 3) -> World:
    """A HotelReservation world warmed up for 5 simulated minutes (an independent copy)."""
    if seed not in _warmed:
        w = World("hotel-reservation", seed=seed)
        w.warm_up(WARM_UP_S)
        _warmed[seed] = w
    w = copy.deepcopy(_warmed[seed])
    w.tsdb.uid = next(tsdb_module._db_ids)
    return w


def firing_names(world_or_cluster: Any) -> set[str]:
    """``alertname:component`` of every firing alert (Watchdog excluded)."""
    alerts = world_or_cluster.firing() if isinstance(world_or_cluster, World) else world_or_cluster.alerts()
    out = set()
    for a in alerts:
        labels = a["labels"]
        if labels.get("alertname") in IGNORED:
            continue
        out.add(f"{labels['alertname']}:{alert_component(labels)}")
    return out


def advance_until_alerts(world: World, max_s: float = ALERT_WAIT_MAX_S) -> float:
    """Advance the clock until a non-Watchdog alert fires (bounded); returns the seconds waited."""
    start = world.clock.now
    while world.clock.now - start < max_s:
        world.advance(ALERT_POLL_S)
        if firing_names(world):
            break
    return world.clock.now - start


def pods_of(world: World, component: str) -> list[dict[str, Any]]:
    return world.store.list("Pod", world.namespace, {world.app.label_key: component})


def logs_of(cluster: TwinCluster, component: str) -> str:
    """Current and previous container logs of every pod of a component, as one text."""
    out = []
    for p in pods_of(cluster.world, component):
        name = p["metadata"]["name"]
        out += cluster.logs(name, cluster.namespace, tail=1000)
        out += cluster.logs(name, cluster.namespace, tail=1000, previous=True)
    return "\n".join(out)


def watch_journal(world: World, cluster: TwinCluster, journal: Any, seconds: float) -> None:
    """Advance the twin ``seconds``, letting the change journal poll every 15 s as STRATUS does."""
    end = world.clock.now + seconds
    while world.clock.now < end:
        world.advance(15.0)
        journal.observe(cluster)


def act(cluster: TwinCluster, verb: str, kind: str, name: str, **params: Any) -> None:
    """Apply one action to the twin's app namespace as an operator would; it must succeed."""
    res = cluster.apply(Action(verb=verb, kind=kind, name=name, namespace=NAMESPACE, params=params))
    assert res.ok, res.message


def drain(cluster: TwinCluster, component: str) -> None:
    """The component's pods go away (an eviction); its ReplicaSet makes new ones."""
    for pod in cluster.list("Pod", NAMESPACE, selector={"io.kompose.service": component}):
        act(cluster, "delete", "Pod", pod["metadata"]["name"])


def all_pods_ready(world: World) -> list[str]:
    """Names of pods that are not Ready (empty when every pod is Ready)."""
    bad = []
    for p in world.store.list("Pod", world.namespace):
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in p.get("status", {}).get("conditions", []))
        if not ready:
            bad.append(p["metadata"]["name"])
    return bad


@pytest.fixture
def world() -> World:
    return warmed_world()


@pytest.fixture
def cluster(world: World) -> TwinCluster:
    return TwinCluster(world)


@pytest.fixture
def ctx() -> Context:
    return Context(db=":memory:")


@pytest.fixture
def twin_factory() -> Callable[..., TwinCluster]:
    """Build an independent warmed twin: ``twin_factory(seed=3)``."""
    return lambda seed=3: TwinCluster(warmed_world(seed))


@pytest.fixture(scope="session")
def twin_helpers() -> Any:
    """The helper functions above, for test modules (conftest is not importable by name)."""
    class Helpers:
        NAMESPACE = NAMESPACE
        warmed_world = staticmethod(warmed_world)
        firing_names = staticmethod(firing_names)
        advance_until_alerts = staticmethod(advance_until_alerts)
        pods_of = staticmethod(pods_of)
        logs_of = staticmethod(logs_of)
        all_pods_ready = staticmethod(all_pods_ready)
    return Helpers

