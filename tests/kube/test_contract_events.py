"""The Cluster contract for the workload controllers' events: reasons, texts, involvedObject, counts.

Runs on the twin and on the real control plane with the twin as kubelet. The texts are the ones the
real deployment and replicaset controllers write; a repeated event is one object whose ``count``
grows (the legacy event recorder's correlation), not a new object.
"""

from __future__ import annotations

import re
from typing import Any

from contract_backends import KNOWN_IMAGE, Backend, running_backend
from kube_manifests import deployment

__all__ = ["running_backend"]  # the fixture, imported so pytest finds it here


def _events(b: Backend, kind: str, name_prefix: str) -> list[dict[str, Any]]:
    return [e for e in b.cluster.events(b.namespace) if e.get("kind") == "Event"
            and e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"].startswith(name_prefix)]


def _running(b: Backend, app: str) -> int:
    return len([p for p in b.cluster.list("Pod", b.namespace, {"app": app})
                if p["kind"] == "Pod" and p["status"].get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")])


def test_scaling_events_and_their_counts(running_backend: Backend) -> None:
    b = running_backend
    b.create(deployment("ev", image=KNOWN_IMAGE, replicas=2))
    b.eventually(lambda: _running(b, "ev") == 2, "two pods of ev running")
    d = b.cluster.get("Deployment", "ev", b.namespace)
    rs = [r for r in b.cluster.list("ReplicaSet", b.namespace, {"app": "ev"}) if r["kind"] == "ReplicaSet"][0]
    rs_name = rs["metadata"]["name"]
    assert re.fullmatch(r"ev-[0-9a-z]+", rs_name)
    for replicas in (1, 2, 1):
        assert b.act("scale", "Deployment", "ev", replicas=replicas).ok
        b.eventually(lambda n=replicas: _running(b, "ev") == n and len(b.cluster.list("Pod", b.namespace,
                                                                                        {"app": "ev"})) == n,
                     f"{replicas} pods of ev")

    def scaling() -> dict[str, int] | None:
        evs = _events(b, "Deployment", "ev")
        got = {e["message"]: e["count"] for e in evs if e["reason"] == "ScalingReplicaSet"}
        want = {f"Scaled up replica set {rs_name} from 0 to 2": 1, f"Scaled down replica set {rs_name} from 2 to 1": 2,
                f"Scaled up replica set {rs_name} from 1 to 2": 1}
        return got if got == want else None
    b.eventually(scaling, "ScalingReplicaSet events with their counts")
    ev = next(e for e in _events(b, "Deployment", "ev") if e["reason"] == "ScalingReplicaSet")
    assert ev["type"] == "Normal" and ev["source"]["component"] == "deployment-controller"
    assert ev["reportingComponent"] == "deployment-controller"
    io = ev["involvedObject"]
    assert {k: io[k] for k in ("kind", "name", "namespace", "uid", "apiVersion")} == {
        "kind": "Deployment", "name": "ev", "namespace": b.namespace, "uid": d["metadata"]["uid"],
        "apiVersion": "apps/v1"}
    assert ev["metadata"]["namespace"] == b.namespace and ev["metadata"]["name"].startswith("ev.")

    def replicaset_events() -> bool:
        evs = _events(b, "ReplicaSet", rs_name)
        created = [e for e in evs if e["reason"] == "SuccessfulCreate"]
        deleted = [e for e in evs if e["reason"] == "SuccessfulDelete"]
        # one event per pod: each names its pod, so none repeats
        return (len(created) == 3 and len(deleted) == 2 and all(e["count"] == 1 for e in created + deleted)
                and all(re.fullmatch(rf"Created pod: {rs_name}-[0-9a-z]{{5}}", e["message"]) for e in created)
                and all(re.fullmatch(rf"Deleted pod: {rs_name}-[0-9a-z]{{5}}", e["message"]) for e in deleted))
    b.eventually(replicaset_events, "SuccessfulCreate x3 and SuccessfulDelete x2 on the ReplicaSet")
    ev = _events(b, "ReplicaSet", rs_name)[0]
    assert ev["source"]["component"] == "replicaset-controller" and ev["involvedObject"]["apiVersion"] == "apps/v1"
