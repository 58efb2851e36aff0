"""Group commit of the intake store, on SQLite and on the real PostgreSQL: a batch written in one
transaction gives what writing its payloads one by one gives, a payload the database refuses leaves
nothing of itself and spoils none of the others, and the writer thread answers every payload it took.

The PostgreSQL cases skip when no server answers at ``STRATUS_TEST_PG_DSN`` (``STRATUS_REQUIRE_PG=1``
turns the skip into a failure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import DSN, pg_reachable, pg_reset

from stratus.serve.payload import WebhookPayload
from stratus.serve.store import Accepted, IntakeStore
from stratus.serve.store.writer import GroupWriter


@pytest.fixture
def stores(db: str) -> Iterator[Callable[[], IntakeStore]]:
    made: list[IntakeStore] = []

    def make() -> IntakeStore:
        made.append(IntakeStore(db))
        return made[-1]

    yield make
    for s in made:
        s.close()


def group(key: str, *alerts: tuple[str, str], status: str = "firing", ns: str = "ns-a") -> WebhookPayload:
    """A payload of group ``key`` whose alerts are ``(alertname, pod)`` pairs."""
    return WebhookPayload.model_validate({
        "version": "4", "groupKey": key, "status": status, "receiver": "stratus",
        "alerts": [{"status": status, "labels": {"alertname": n, "namespace": ns, "pod": pod}} for n, pod in alerts]})


def unencodable(key: str) -> WebhookPayload:
    """A valid-looking payload whose second alert cannot be written (an extra field JSON cannot hold)."""
    bad = group(key, ("A", "p1"), ("B", "p2"))
    assert bad.alerts[1].__pydantic_extra__ is not None
    bad.alerts[1].__pydantic_extra__["runbook"] = object()
    return bad


def shape(results: list[Accepted | Exception]) -> list[tuple[Any, ...]]:
    """Results with incident ids replaced by the index of their first appearance (ids are random)."""
    first: dict[str, int] = {}
    out: list[tuple[Any, ...]] = []
    for r in results:
        assert isinstance(r, Accepted), r
        ref = None if r.incident_id is None else first.setdefault(r.incident_id, len(first))
        out.append((ref, r.created, r.firing, r.resolved))
    return out


def test_a_batch_gives_what_one_by_one_gives(stores: Callable[[], IntakeStore], db: str) -> None:
    """Repeats, a new group sharing a fingerprint with an open one, and resolved alerts of an unknown group."""
    items = [group("g1", ("A", "p1")), group("g1", ("A", "p1"), ("B", "p2")), group("g2", ("C", "p3")),
             group("g3", ("B", "p2")),  # same alert as g1 holds: g1's incident takes it
             group("g4", ("D", "p4"), status="resolved"), group("g2", ("C", "p3"), status="resolved")]
    batched = stores()
    together = batched.commit_group([(p, "default") for p in items])
    if db != DSN:  # the second store gets its own file; on PostgreSQL it needs a clean database
        one_by_one = IntakeStore(db.replace("store.db", "each.db"))
    else:
        batched.close()
        pg_reset()
        one_by_one = stores()
    try:
        each = [one_by_one.commit_group([(p, "default")])[0] for p in items]
        rows = one_by_one.incidents()
    finally:
        one_by_one.close()
    assert shape(together) == shape(each) == [(0, True, 1, 0), (0, False, 2, 0), (1, True, 1, 0), (0, False, 1, 0),
                                              (None, False, 0, 1), (1, False, 0, 1)]
    assert sorted(r["group_key"] for r in rows) == ["g1", "g2"]


def test_a_refused_payload_leaves_nothing_and_spoils_no_other(stores: Callable[[], IntakeStore]) -> None:
    store = stores()
    results = store.commit_group([(group("ok-1", ("A", "p1")), "default"), (unencodable("bad"), "default"),
                                  (group("ok-2", ("A", "p9")), "default")])
    assert isinstance(results[1], TypeError)
    assert all(isinstance(r, Accepted) and r.created for r in (results[0], results[2]))
    rows = store.incidents()
    assert sorted(r["group_key"] for r in rows) == ["ok-1", "ok-2"]
    for r in rows:
        detail = store.incident(r["id"])
        assert detail is not None and [e["kind"] for e in detail["events"]] == ["created"]


def test_postgres_rolls_back_the_part_of_a_payload_already_written(tmp_path: Path) -> None:
    """PostgreSQL refuses a NUL in a text column: the incident row written before the alert row goes too."""
    pg_reachable()
    pg_reset()
    store = IntakeStore(DSN)
    try:
        bad = group("bad", ("A", "p1"))
        bad.alerts[0].fingerprint = "f\x00"  # past validation on purpose: HTTP intake refuses it (422)
        results = store.commit_group([(group("ok", ("A", "p2")), "default"), (bad, "default")])
        assert isinstance(results[0], Accepted) and isinstance(results[1], Exception)
        assert [r["group_key"] for r in store.incidents()] == ["ok"]
    finally:
        store.close()


def test_the_writer_answers_every_payload_it_took(stores: Callable[[], IntakeStore]) -> None:
    """Eight threads submit at once (the writer groups them); close() commits what is queued, then refuses."""
    store = stores()
    barrier = threading.Barrier(8, timeout=30)
    futures: list[Any] = []

    def burst(t: int) -> None:
        barrier.wait()
        futures.extend(store.submit(group(f"t{t}-{i}", ("A", f"p{t}-{i}")), "default") for i in range(25))

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    store.close()
    assert len(futures) == 200 and all(f.done() and f.result(0).created for f in futures)
    late = store.submit(group("late", ("A", "p")), "default")
    with pytest.raises(RuntimeError, match="closed"):
        late.result(1)


def test_a_payload_whose_caller_gave_up_is_left_out_and_the_writer_goes_on() -> None:
    """A cancelled future (its HTTP request went away) is not written, and does not stop the writer thread."""
    entered, release = threading.Event(), threading.Event()
    written: list[str] = []

    def commit(items: list[tuple[WebhookPayload, str]]) -> list[Accepted | Exception]:
        entered.set()
        release.wait(30)
        written.extend(p.groupKey for p, _ in items)
        return [Accepted(f"inc-{p.groupKey}", True, 1, 0) for p, _ in items]

    writer = GroupWriter(commit)
    try:
        first = writer.submit(group("first", ("A", "p1")), "default")
        assert entered.wait(30)  # the writer holds "first" in commit: "gone" waits for the next group
        gone = writer.submit(group("gone", ("A", "p2")), "default")
        assert gone.cancel()
        release.set()
        assert first.result(30).incident_id == "inc-first"
        assert writer.submit(group("after", ("A", "p3")), "default").result(30).incident_id == "inc-after"
        assert "gone" not in written
    finally:
        writer.close()
