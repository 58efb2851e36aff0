"""The mirror world (``twin.mirror``) without an API server: objects keep their API identity, the twin
kubelet runs on them in wall-clock steps, events are queued and aggregated for the API, fault injectors
are journaled, and each namespace has its own database accounts."""

from __future__ import annotations

from typing import Any

import pytest

from stratus.twin import faults
from stratus.twin.mirror import MirrorWorld

T0 = 1_800_000_000.0


def _api_objects(w: MirrorWorld, ns: str, comps: list[str]) -> None:
    """The app's objects as an API server would hand them over (uids and resourceVersions of its own)."""
    for comp in comps:
        d, svc = w.app.deployment(comp, ns), w.app.service(comp, ns)
        for obj in (d, svc):
            obj["metadata"].update(uid=f"uid-{obj['kind']}-{comp}", resourceVersion="42")
            w.store.put(obj)
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{comp}-abc", "namespace": ns, "uid": f"uid-pod-{ns}-{comp}",
                            "labels": dict(d["spec"]["selector"]["matchLabels"])},
               "spec": {**d["spec"]["template"]["spec"], "nodeName": "twin-node-0"},
               "status": {"podIP": "10.244.1.9", "hostIP": "172.18.0.2", "startTime": "2027-01-15T08:00:00Z"}}
        w.store.put(pod)


def _crash_loop_pod(w: MirrorWorld) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "broken", "namespace": "a", "uid": "uid-broken"},
           "spec": {"nodeName": "twin-node-0", "containers": [
               {"name": "geo", "image": next(iter(w.app.images)), "command": ["geo-server"]}]},
           "status": {"podIP": "10.244.1.8"}}
    w.store.put(pod)
    return pod


def test_kubelet_runs_on_api_objects_in_wall_time() -> None:
    w = MirrorWorld(now=T0, scrape_s=5.0)
    pod = _crash_loop_pod(w)
    for t in range(0, 32, 1):
        w.step(T0 + t)
    cs = pod["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 3  # exits at once; back-off 10 s, 20 s
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert pod["metadata"]["uid"] == "uid-broken"  # the API's identity is kept
    backoff = next(ev for (uid, reason, _), ev in w.store.outbox.items() if reason == "BackOff")
    assert backoff["count"] == 3 and backoff["involvedObject"]["uid"] == "uid-broken"
    assert w.tsdb.latest("kube_pod_container_status_restarts_total",
                         {"job": "kube-state-metrics", "instance": "10.244.0.9:8443", "namespace": "a",
                          "pod": "broken", "uid": "uid-broken", "container": "geo"}) is not None


def test_injectors_are_journaled_not_applied_as_the_twin_would() -> None:
    w = MirrorWorld(now=T0)
    _api_objects(w, "a", ["mongodb-geo", "geo"])
    with w.in_namespace("a"), w.journaled() as changes:
        rec = faults.inject(w, "service_target_port", "geo", {})
    assert rec["original"] == {"targetPort": 8083}
    assert [(op, o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"]) for op, o in changes] == [
        ("update", "Service", "geo", "42")]  # the API's resourceVersion, for optimistic concurrency
    with w.in_namespace("a"), w.journaled() as changes:
        faults.inject(w, "revoke_db_role", "mongodb-geo", {})
    assert [(op, o["kind"], o["metadata"]["name"]) for op, o in changes] == [("delete", "Pod", "geo-abc")]
    assert w.store.exists("Pod", "geo-abc", "a")  # the API deletes it; the agent then stops it
    assert w.store.journal is None and w.namespace == w.app.namespace


def test_database_accounts_per_namespace() -> None:
    w = MirrorWorld(now=T0)
    w.db_exec("mongodb-geo", {"op": "drop_user", "user": "admin"}, namespace="a")
    assert "admin" not in w.databases("a")["mongodb-geo"]["users"]
    assert "admin" in w.databases("b")["mongodb-geo"]["users"]
    assert w.db_check("mongodb-geo:27017", "a", "geo-db", startup=True) == (False, "auth")
    assert w.db_check("mongodb-geo:27017", "b", "geo-db", startup=True) == (True, "")
    with pytest.raises(ValueError, match="not a database"):
        w.db_exec("geo", {"op": "drop_user", "user": "admin"}, namespace="a")
