"""The Cluster contract for the namespace write lock, a ``coordination.k8s.io`` Lease, on both backends.

Renewing bumps ``renewTime`` and the object's version and keeps ``acquireTime``; an expired lease is taken
over by another holder, and the old holder can neither release nor re-take it; racing holders get one
winner, because creates and updates are optimistic (a stale write is a conflict, not a second owner).
"""

from __future__ import annotations

import threading

from contract_backends import Backend, backend

from stratus.cluster.kube import LOCK_NAME

__all__ = ["backend"]  # the fixture, imported so pytest finds it here


def _lease(b: Backend) -> dict:
    return b.cluster.get("Lease", LOCK_NAME, b.namespace)


def test_renewal_moves_renew_time_and_keeps_acquire_time(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    assert c.acquire_lock(ns, "agent-a", ttl_s=30)
    first = _lease(backend)
    c.wait(1.1)  # renew times are microsecond stamps: let the clock move
    assert c.acquire_lock(ns, "agent-a", ttl_s=30)
    again = _lease(backend)
    assert again["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert again["spec"]["acquireTime"] == first["spec"]["acquireTime"]
    assert again["spec"]["renewTime"] > first["spec"]["renewTime"]
    assert again["spec"]["holderIdentity"] == "agent-a" and again["spec"]["leaseDurationSeconds"] == 30


def test_expired_lease_is_taken_over(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    assert c.acquire_lock(ns, "agent-b", ttl_s=1)
    held = _lease(backend)["spec"]
    c.wait(2.5)
    assert c.acquire_lock(ns, "agent-a", ttl_s=60)
    spec = _lease(backend)["spec"]
    assert spec["holderIdentity"] == "agent-a" and spec["acquireTime"] > held["acquireTime"]
    c.release_lock(ns, "agent-b")  # the old holder's release does not free someone else's lock
    assert _lease(backend)["spec"]["holderIdentity"] == "agent-a"
    assert not c.acquire_lock(ns, "agent-b", ttl_s=1)
    # a holder whose own lease expired takes it again
    assert c.acquire_lock(ns, "agent-c", ttl_s=1) is False
    c.release_lock(ns, "agent-a")
    assert c.acquire_lock(ns, "agent-c", ttl_s=1)
    c.wait(2.5)
    assert c.acquire_lock(ns, "agent-c", ttl_s=60)
    assert _lease(backend)["spec"]["holderIdentity"] == "agent-c"


def _race(b: Backend, holders: list[str]) -> list[str]:
    """``acquire_lock`` by every holder at once, each in its own thread; the holders that got True."""
    start, won = threading.Barrier(len(holders)), []

    def one(holder: str) -> None:
        start.wait(timeout=30)
        if b.cluster.acquire_lock(b.namespace, holder, ttl_s=60):
            won.append(holder)
    threads = [threading.Thread(target=one, args=(h,)) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return won


def test_racing_holders_get_one_winner(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    won = _race(backend, [f"new-{i}" for i in range(6)])  # a race to create the Lease
    assert len(won) == 1, won
    assert _lease(backend)["spec"]["holderIdentity"] == won[0]
    c.release_lock(ns, won[0])
    assert c.acquire_lock(ns, "short", ttl_s=1)
    c.wait(2.5)
    won = _race(backend, [f"taker-{i}" for i in range(6)])  # a race to take over an expired one
    assert len(won) == 1, won
    assert _lease(backend)["spec"]["holderIdentity"] == won[0]
