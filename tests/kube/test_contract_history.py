"""The Cluster contract for rollout history kept in ControllerRevisions (StatefulSets, DaemonSets).

Runs on the twin and on the real control plane (``backend``). The real StatefulSet and DaemonSet
controllers number the revisions; ``rollout undo`` behaves as kubectl's: back to the revision before the
newest, or to ``to_revision``; the restored template's ControllerRevision moves to the next number;
undoing to the template already live is skipped; a missing revision is refused in kubectl's words.
"""

from __future__ import annotations

from typing import Any

import pytest
from contract_backends import Backend, backend

__all__ = ["backend"]  # the fixture, imported so pytest finds it here


def _workload(kind: str, image: str) -> dict[str, Any]:
    labels = {"app": "hist"}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels},
                            "template": {"metadata": {"labels": labels},
                                         "spec": {"containers": [{"name": "main", "image": image}]}}}
    if kind == "StatefulSet":
        spec.update(serviceName="hist", replicas=1)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "hist", "labels": labels}, "spec": spec}


def _history(b: Backend, kind: str) -> dict[str, int]:
    """Image of each ControllerRevision the workload owns -> its revision number."""
    uid = b.cluster.get(kind, "hist", b.namespace)["metadata"]["uid"]
    out = {}
    for r in b.cluster.list("ControllerRevision", b.namespace):
        if r["kind"] == "ControllerRevision" and any(o["uid"] == uid for o in r["metadata"]["ownerReferences"]):
            out[r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]] = int(r["revision"])
    return out


def _image(b: Backend, kind: str) -> str:
    return b.cluster.get(kind, "hist", b.namespace)["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_rollout_undo_through_controller_revisions(backend: Backend, kind: str) -> None:
    b, what = backend, f"{kind.lower()}.apps/hist"
    b.create(_workload(kind, "memcached:1.6.7"))
    b.eventually(lambda: _history(b, kind) == {"memcached:1.6.7": 1}, "first ControllerRevision")
    res = b.act("rollout_undo", kind, "hist")
    assert not res.ok and "no last revision to roll back to" in res.message, res.message
    assert b.act("set_image", kind, "hist", images={"main": "memcached:bad"}).ok
    b.eventually(lambda: _history(b, kind) == {"memcached:1.6.7": 1, "memcached:bad": 2}, "second revision")

    res = b.act("rollout_undo", kind, "hist", dry_run=True)
    assert res.ok and res.message == f"{what} rolled back (server dry run)", res.message
    assert _image(b, kind) == "memcached:bad"
    res = b.act("rollout_undo", kind, "hist")
    assert res.ok and res.changed and res.message == f"{what} rolled back", res.message
    assert _image(b, kind) == "memcached:1.6.7"
    # the restored template keeps its ControllerRevision, renumbered as the newest (no third one)
    b.eventually(lambda: _history(b, kind) == {"memcached:1.6.7": 3, "memcached:bad": 2}, "revision 3")

    res = b.act("rollout_undo", kind, "hist", to_revision=3)
    assert res.ok and not res.changed, res.message
    assert res.message == f"{what} skipped rollback (current template already matches revision 3)"
    res = b.act("rollout_undo", kind, "hist", to_revision=9)
    assert not res.ok and "unable to find specified revision 9 in history" in res.message, res.message
    assert b.act("rollout_undo", kind, "hist", to_revision=2).ok
    assert _image(b, kind) == "memcached:bad"
    b.eventually(lambda: _history(b, kind) == {"memcached:1.6.7": 3, "memcached:bad": 4}, "revision 4")
