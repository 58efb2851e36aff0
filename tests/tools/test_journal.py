"""The change journal on the twin: what it records, what it keeps as last-known-healthy, when a change
counts as settled (benign), its bounds, and the ``changes`` analyzer it feeds.

Every change is made through the Cluster protocol, as an operator would, after a healthy warm-up.
"""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action
from stratus.tools.analyzers import run_all
from stratus.tools.journal import ChangeJournal, summarize

NS = "test-hotel-reservation"


def watch(world: Any, cluster: Any, journal: ChangeJournal, seconds: float, poll: float = 15.0) -> None:
    end = world.clock.now + seconds
    while world.clock.now < end:
        world.advance(poll)
        journal.observe(cluster)


def act(cluster: Any, **kw: Any) -> None:
    res = cluster.apply(Action(namespace=kw.pop("namespace", NS), **kw))
    assert res.ok, res.message


def test_first_poll_is_the_baseline_and_healthy_versions_are_kept(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    j.observe(cluster)
    assert not j.recent()  # what exists at the first poll is the baseline, not a change
    assert j.last_healthy("Deployment", "geo", NS) is None  # not yet healthy for the dwell time
    watch(world, cluster, j, 90)
    healthy = j.last_healthy("Deployment", "geo", NS)
    assert healthy is not None and "status" not in healthy
    assert healthy["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":latest")
    assert j.current_is_healthy("Node", "kind-worker", None)


def test_an_update_is_recorded_with_its_fields_and_a_failing_one_stays_unsettled(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 90)
    act(cluster, verb="set_image", kind="Deployment", name="geo",
        params={"images": {"hotel-reserv-geo": "yinfangchen/hotelreservation:nope"}})
    watch(world, cluster, j, 120)
    [c] = [c for c in j.recent() if c["name"] == "geo"]
    assert (c["kind"], c["op"], c["settled"]) == ("Deployment", "update", False)
    image = next(f for f in c["fields"] if f["field"] == "image")
    assert image["before"].endswith(":latest") and image["after"].endswith(":nope")
    assert j.onset() is not None and c["at"] <= j.onset() + 15
    assert j.unsettled(c["at"] - 1, c["at"] + 1) == [c]
    # the last healthy version is still the one before the change
    assert j.last_healthy("Deployment", "geo", NS)["spec"]["template"]["spec"]["containers"][0]["image"].endswith(
        ":latest")


def test_a_benign_change_that_stays_healthy_is_settled(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS], healthy_dwell_s=60)
    watch(world, cluster, j, 90)
    act(cluster, verb="scale", kind="Deployment", name="recommendation", params={"replicas": 2})
    act(cluster, verb="set_env", kind="Deployment", name="profile", params={"env": {"LOG_LEVEL": "debug"}})
    watch(world, cluster, j, 150)
    changes = {c["name"]: c for c in j.recent()}
    assert {f["field"] for f in changes["recommendation"]["fields"]} == {"replicas"}
    assert changes["profile"]["fields"][0]["path"] == "spec.template.spec.containers[hotel-reserv-profile].env.LOG_LEVEL"
    assert changes["recommendation"]["settled"] and changes["profile"]["settled"]
    assert j.unsettled(0, world.clock.now) == []
    assert j.last_healthy("Deployment", "recommendation", NS)["spec"]["replicas"] == 2


def test_a_deleted_object_keeps_its_last_healthy_manifest(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 90)
    act(cluster, verb="delete", kind="Service", name="geo")
    watch(world, cluster, j, 30)
    [c] = [c for c in j.recent() if c["op"] == "delete"]
    assert (c["kind"], c["name"]) == ("Service", "geo")
    assert j.deleted("Service", "geo", NS)
    assert j.last_healthy("Service", "geo", NS)["spec"]["selector"] == {"io.kompose.service": "geo"}


def test_the_journal_is_bounded(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS], max_changes=3)
    j.observe(cluster)
    for replicas in (2, 3, 1, 2, 1):
        act(cluster, verb="scale", kind="Deployment", name="recommendation", params={"replicas": replicas})
        world.advance(15)
        j.observe(cluster)
    assert len(j.recent()) == 3
    assert [c["id"] for c in j.recent()] == [5, 4, 3]


def test_summaries_name_the_field_that_changed() -> None:
    before = {"spec": {"selector": {"app": "geo"}, "ports": [{"name": "http", "port": 80, "targetPort": 8083}]}}
    after = {"spec": {"selector": {"app": "geo2"}, "ports": [{"name": "http", "port": 80, "targetPort": 9090}]}}
    fields = summarize("Service", before, after)
    assert [(f["field"], f["path"], f["after"]) for f in fields] == [
        ("selector", "spec.selector.app", "geo2"), ("ports", "spec.ports.http.targetPort", "9090")]
    node = summarize("Node", {"spec": {}}, {"spec": {"unschedulable": True}})
    assert [(f["field"], f["after"]) for f in node] == [("unschedulable", "true")]


def test_changes_become_evidence_only_when_they_line_up_with_symptoms(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 90)
    act(cluster, verb="scale", kind="Deployment", name="recommendation", params={"replicas": 2})
    watch(world, cluster, j, 120)  # benign and settled
    act(cluster, verb="patch", kind="Service", name="geo",
        params={"type": "merge", "patch": {"spec": {"selector": {"io.kompose.service": "geo-v2"}}}})
    watch(world, cluster, j, 90)
    _view, without = run_all(cluster, NS)
    assert not [f for f in without if f.source == "changes"]
    _view, found = run_all(cluster, NS, journal=j)
    changes = [f for f in found if f.source == "changes"]
    assert [(f.signal, f.component, f.data["kind"], f.data["name"]) for f in changes] == [
        ("ChangeOnBrokenObject", "geo", "Service", "geo")]
    assert "spec.selector.io.kompose.service" in changes[0].summary
