"""``stratus serve`` keeps a change journal per namespace between incidents (``JournalWatcher``)."""

from __future__ import annotations

import threading
from typing import Any

from testkit import eventually

from stratus.cluster.actions import Action
from stratus.serve.clusters import TwinProvider
from stratus.serve.watch import JournalWatcher

NS = "test-hotel-reservation"


def test_the_watcher_records_changes_between_incidents(cluster: Any) -> None:
    provider = TwinProvider(cluster=cluster, poll_s=0)
    watcher = JournalWatcher(provider, (NS,), poll_s=15.0)
    watcher.poll()
    res = cluster.apply(Action(verb="scale", kind="Deployment", name="recommendation", namespace=NS,
                               params={"replicas": 2}))
    assert res.ok
    cluster.wait(15)
    watcher.poll()
    [change] = watcher.journal(NS).recent()
    assert (change["kind"], change["name"], change["fields"][0]["field"]) == ("Deployment", "recommendation",
                                                                             "replicas")
    assert watcher.journal("other-ns").recent() == []  # a namespace named by an incident gets its own


def test_the_watcher_thread_starts_and_stops(cluster: Any) -> None:
    watcher = JournalWatcher(TwinProvider(cluster=cluster, poll_s=0), (NS,), poll_s=3600.0)
    watcher.start()
    eventually(lambda: watcher.journal(NS).polls == 1, 30, "the watcher's first poll")
    watcher.stop()
    assert not any(t.name == "stratus-journal" for t in threading.enumerate())
    assert watcher.journal(NS).polls == 1  # the first poll runs at start, the next would be an hour later
