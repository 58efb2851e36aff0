"""The intake store on SQLite and on the real PostgreSQL: one writer per namespace across processes,
dead claims resumed, concurrent deliveries of one group opening one incident.

The PostgreSQL cases skip when no server answers at ``STRATUS_TEST_PG_DSN`` (``STRATUS_REQUIRE_PG=1``
turns the skip into a failure, as in tests/test_postgres.py). Separate ``IntakeStore`` objects have
separate connections, as separate processes would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from stratus.serve.payload import WebhookPayload
from stratus.serve.store import IntakeStore


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def stores(db: str) -> Iterator[Callable[..., IntakeStore]]:
    made: list[IntakeStore] = []

    def make(clock: Callable[[], float] | None = None) -> IntakeStore:
        s = IntakeStore(db, clock=clock) if clock else IntakeStore(db)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def group(ns: str, key: str, *names: str, status: str = "firing") -> WebhookPayload:
    return WebhookPayload.model_validate({
        "version": "4", "groupKey": key, "status": status, "receiver": "stratus",
        "alerts": [{"status": status, "labels": {"alertname": n, "namespace": ns}} for n in names]})


def test_one_incident_per_namespace_runs_at_a_time(stores: Callable[..., IntakeStore]) -> None:
    clock = Clock()
    store = stores(clock)
    a1 = store.accept(group("ns-a", "a1", "X"), "default").incident_id
    clock.t += 1
    a2 = store.accept(group("ns-a", "a2", "Y"), "default").incident_id
    clock.t += 1
    b1 = store.accept(group("ns-b", "b1", "Z"), "default").incident_id
    first, second = store.claim("p1/w0", 30), store.claim("p2/w0", 30)
    assert first is not None and second is not None
    assert (first.incident_id, second.incident_id) == (a1, b1)  # a2 waits: ns-a is held
    assert store.claim("p3/w0", 30) is None
    assert store.queue_depth() == {"queued": 1, "running": 2, "waiting": 0}
    assert store.finish(first, "p1/w0", "resolved", {})
    third = store.claim("p3/w0", 30)
    assert third is not None and third.incident_id == a2


def test_a_dead_holders_incident_is_resumed_once_its_lease_lapses(stores: Callable[..., IntakeStore]) -> None:
    clock = Clock()
    store = stores(clock)
    incident = store.accept(group("ns-a", "a1", "X"), "default").incident_id
    dead = store.claim("p1/w0", 30)
    assert dead is not None and dead.runs == 1
    clock.t += 10
    assert store.claim("p2/w0", 30) is None  # lease still live
    assert store.renew(dead, "p1/w0", 30)
    clock.t += 31  # p1 stopped renewing: it died
    resumed = store.claim("p2/w0", 30)
    assert resumed is not None and resumed.incident_id == incident and resumed.runs == 2
    assert not store.renew(dead, "p1/w0", 30) and not store.finish(dead, "p1/w0", "resolved", {})
    assert store.finish(resumed, "p2/w0", "resolved", {})
    row = store.incident(incident)
    assert row is not None and row["outcome"] == "resolved" and row["runs"] == 2
    assert [e["kind"] for e in row["events"]] == ["created", "claimed", "claimed", "finished"]


def test_an_answer_requeues_only_a_waiting_incident(stores: Callable[..., IntakeStore]) -> None:
    store = stores()
    incident = store.accept(group("ns-a", "a1", "X"), "default").incident_id
    assert incident is not None and not store.answer(incident, "approve")
    claim = store.claim("p1/w0", 30)
    assert claim is not None and store.wait_for_approval(claim, "p1/w0", {"transaction": "tx1"})
    assert store.claim("p2/w0", 30) is None  # nothing runnable until a human answers
    assert store.answer(incident, "approve") and not store.answer(incident, "approve")
    again = store.claim("p2/w0", 30)
    assert again is not None and again.resume == "approve"


def test_a_notice_is_recorded_once(stores: Callable[..., IntakeStore]) -> None:
    one, two = stores(), stores()
    assert one.first_notice("inc-1", "detect")
    assert not two.first_notice("inc-1", "detect")
    assert two.first_notice("inc-1", "resolve")


def test_concurrent_claims_and_deliveries_from_many_connections(stores: Callable[..., IntakeStore]) -> None:
    """Eight connections race: one group delivered by all opens one incident; one namespace, one claim."""
    many = [stores() for _ in range(8)]
    barrier = threading.Barrier(len(many), timeout=30)
    accepted: list[Any] = []
    claims: list[Any] = []

    def deliver_then_claim(i: int, store: IntakeStore) -> None:
        barrier.wait()
        accepted.append(store.accept(group("ns-a", "same-group", "X", "Y"), "default"))
        barrier.wait()
        claims.append(store.claim(f"p{i}/w0", 30))

    threads = [threading.Thread(target=deliver_then_claim, args=(i, s)) for i, s in enumerate(many)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(accepted) == 8 and len({a.incident_id for a in accepted}) == 1
    assert sum(a.created for a in accepted) == 1
    assert len([c for c in claims if c is not None]) == 1
    row = many[0].incident(accepted[0].incident_id)
    assert row is not None and {a["received"] for a in row["alerts"]} == {8}
