"""The Cluster contract: the same object-level behaviour from the twin and from a real API server.

Every test runs twice, on a ``TwinCluster`` and on a ``KubeCluster`` over a fresh namespace of the real
control plane (pods stay Pending there: no kubelet runs, so the contract is about objects). Where the
two disagreed, the real server was right and the twin was fixed; each such case is a test here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from contract_backends import Backend, backend, project
from kube_manifests import configmap, deployment, service

from stratus.cluster.base import Cluster, NotFound
from stratus.cluster.kube import LOCK_NAME
from stratus.cluster.mutate import RESTARTED_AT

REVISION = "deployment.kubernetes.io/revision"
__all__ = ["backend"]  # the fixture, imported so pytest finds it here


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs if o["kind"] != "Omitted"]


def test_create_get_list_with_selector_and_bounded_marker(backend: Backend) -> None:
    c = backend.cluster
    assert isinstance(c, Cluster)
    tag = uuid.uuid4().hex[:6]
    for i in range(5):
        backend.create(configmap(f"cm{i}", {"i": str(i)}, {"set": tag}))
    backend.create(configmap("other", {}, {"set": "else"}))
    assert c.get("ConfigMap", "cm3", backend.namespace)["data"] == {"i": "3"}
    assert names(c.list("ConfigMap", backend.namespace, {"set": tag})) == [f"cm{i}" for i in range(5)]
    cut = c.list("ConfigMap", backend.namespace, {"set": tag}, limit=2)
    assert names(cut) == ["cm0", "cm1"] and len(cut) == 3
    assert cut[2]["kind"] == "Omitted" and "more configmaps omitted" in cut[2]["message"]
    dup = backend.act("create", "ConfigMap", "cm0", manifest=configmap("cm0", {}))
    assert not dup.ok and '"cm0" already exists' in dup.message


def test_not_found_names_the_object(backend: Backend) -> None:
    with pytest.raises(NotFound, match='"nope" not found'):
        backend.cluster.get("Deployment", "nope", backend.namespace)
    res = backend.act("scale", "Deployment", "nope", replicas=1)
    assert not res.ok and '"nope" not found' in res.message
    res = backend.act("delete", "ConfigMap", "nope")
    assert not res.ok and '"nope" not found' in res.message


def test_workload_verbs_give_the_same_deployment(backend: Backend) -> None:
    c = backend.cluster
    backend.create(deployment())
    assert backend.act("scale", "Deployment", "web", replicas=4).changed
    again = backend.act("scale", "Deployment", "web", replicas=4)
    assert again.ok and not again.changed and "unchanged" in again.message
    for verb, params in [("set_image", {"images": {"main": "nginx:1.28"}}), ("set_env", {"env": {"LOG": "debug"}}),
                         ("set_resources", {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m"}}),
                         ("label", {"set": {"tier": "front"}}), ("annotate", {"set": {"owner": "sre"}}),
                         ("rollout_restart", {})]:
        res = backend.act(verb, "Deployment", "web", **params)
        assert res.ok and res.changed, (verb, res.message)
    d = c.get("Deployment", "web", backend.namespace)
    want = {"metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"replicas": 4, "template": {"spec": {"containers": [
                {"name": "main", "image": "nginx:1.28", "env": [{"name": "LOG", "value": "debug"}],
                 "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m"}}}]}}}}
    assert project(d, want) == want
    assert d["metadata"]["annotations"]["owner"] == "sre"
    assert RESTARTED_AT in d["spec"]["template"]["metadata"]["annotations"]
    assert backend.act("label", "Deployment", "web", remove=["tier"]).ok
    assert "tier" not in c.get("Deployment", "web", backend.namespace)["metadata"]["labels"]


def test_service_configmap_and_networkpolicy_writes(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    res = backend.act("apply", "ConfigMap", "cfg", manifest=configmap("cfg", {"k": "1"}))
    assert res.ok and "created" in res.message
    res = backend.act("apply", "ConfigMap", "cfg", manifest=configmap("cfg", {"k": "2"}))
    assert res.ok and "configured" in res.message
    assert c.get("ConfigMap", "cfg", ns)["data"] == {"k": "2"}
    assert backend.act("patch", "ConfigMap", "cfg", type="merge", patch={"data": {"k": None, "j": "3"}}).ok
    assert c.get("ConfigMap", "cfg", ns)["data"] == {"j": "3"}
    backend.create(service())
    assert backend.act("label", "Service", "web", set={"team": "a"}).ok
    assert backend.act("patch", "Service", "web", type="json",
                       patch=[{"op": "replace", "path": "/spec/selector", "value": {"app": "api"}}]).ok
    assert c.get("Service", "web", ns)["spec"]["selector"] == {"app": "api"}
    backend.create({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    assert c.get("NetworkPolicy", "deny", ns)["spec"]["policyTypes"] == ["Ingress"]
    for kind, name in [("NetworkPolicy", "deny"), ("ConfigMap", "cfg"), ("Service", "web")]:
        res = backend.act("delete", kind, name)
        assert res.ok and f'{kind.lower()} "{name}" deleted' == res.message
        with pytest.raises(NotFound):
            c.get(kind, name, ns)


def test_node_verbs(backend: Backend) -> None:
    name = f"node-{uuid.uuid4().hex[:6]}"
    backend.make_node(name)
    c = backend.cluster
    assert backend.act("cordon", "Node", name).changed
    assert c.get("Node", name)["spec"]["unschedulable"] is True
    assert backend.act("uncordon", "Node", name).changed
    assert not c.get("Node", name)["spec"].get("unschedulable")
    taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
    assert backend.act("taint", "Node", name, add=[taint]).ok
    assert taint in c.get("Node", name)["spec"]["taints"]  # the real node controller adds its not-ready taint
    assert backend.act("taint", "Node", name, remove=[{"key": "dedicated"}]).ok
    assert [t["key"] for t in c.get("Node", name)["spec"].get("taints") or []] in ([], ["node.kubernetes.io/not-ready"])
    assert backend.act("label", "Node", name, set={"pool": "db"}).ok
    assert c.get("Node", name)["metadata"]["labels"]["pool"] == "db"


def test_dry_run_changes_nothing(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    backend.create(deployment())
    backend.create(configmap("cfg", {"a": "b"}))
    before = c.get("Deployment", "web", ns)
    for verb, params in [("scale", {"replicas": 9}), ("set_image", {"images": {"main": "x:2"}}),
                         ("set_env", {"env": {"A": "1"}}), ("rollout_restart", {}), ("label", {"set": {"x": "y"}}),
                         ("patch", {"type": "merge", "patch": {"spec": {"paused": True}}})]:
        res = backend.act(verb, "Deployment", "web", dry_run=True, **params)
        assert res.ok and res.dry_run and "(server dry run)" in res.message, (verb, res.message)
    assert backend.act("delete", "ConfigMap", "cfg", dry_run=True).ok
    assert backend.act("create", "ConfigMap", "new", dry_run=True, manifest=configmap("new", {})).ok
    after = c.get("Deployment", "web", ns)
    # generation, not resourceVersion: the real deployment controller may write status meanwhile
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"] and after["metadata"]["labels"] == before["metadata"]["labels"]
    assert c.get("ConfigMap", "cfg", ns)["data"] == {"a": "b"}
    with pytest.raises(NotFound):
        c.get("ConfigMap", "new", ns)


def test_invalid_change_is_refused_naming_the_field(backend: Backend) -> None:
    backend.create(deployment())
    for dry_run in (True, False):
        res = backend.act("scale", "Deployment", "web", dry_run=dry_run, replicas=-1)
        assert not res.ok and "spec.replicas" in res.message and "greater than or equal to 0" in res.message
    assert backend.cluster.get("Deployment", "web", backend.namespace)["spec"]["replicas"] == 2


def test_snapshot_restore_round_trip(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    backend.create(deployment())
    backend.create(service())
    backend.create(configmap("cfg", {"mode": "safe"}))
    refs = [("Deployment", "web", ns), ("Service", "web", ns), ("ConfigMap", "cfg", ns), ("ConfigMap", "added", ns)]
    snap = c.snapshot(refs)
    assert [m.get("absent", False) for m in snap] == [False, False, False, True]
    assert all("status" not in m and "resourceVersion" not in m["metadata"] for m in snap)
    assert backend.act("scale", "Deployment", "web", replicas=7).ok
    assert backend.act("set_image", "Deployment", "web", images={"main": "nginx:broken"}).ok
    assert backend.act("patch", "Service", "web", type="merge",
                       patch={"spec": {"ports": [{"name": "http", "port": 81, "targetPort": 9090}]}}).ok
    assert backend.act("delete", "ConfigMap", "cfg").ok
    backend.create(configmap("added", {"x": "y"}))
    c.restore(snap)
    d = c.get("Deployment", "web", ns)
    assert d["spec"]["replicas"] == 2 and d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    ports = c.get("Service", "web", ns)["spec"]["ports"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == [("http", 80, 8080)]
    assert c.get("ConfigMap", "cfg", ns)["data"] == {"mode": "safe"}
    with pytest.raises(NotFound):
        c.get("ConfigMap", "added", ns)


def test_lease_lock(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    assert c.acquire_lock(ns, "agent-a")
    assert not c.acquire_lock(ns, "agent-b")
    assert c.acquire_lock(ns, "agent-a")  # the holder renews
    spec = c.get("Lease", LOCK_NAME, ns)["spec"]
    assert {k: spec[k] for k in ("holderIdentity", "leaseDurationSeconds")} == {
        "holderIdentity": "agent-a", "leaseDurationSeconds": 600}
    assert set(spec) == {"holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime"}
    c.release_lock(ns, "agent-b")  # not the holder: nothing happens
    assert c.get("Lease", LOCK_NAME, ns)["spec"]["holderIdentity"] == "agent-a"
    c.release_lock(ns, "agent-a")
    with pytest.raises(NotFound):
        c.get("Lease", LOCK_NAME, ns)
    assert c.acquire_lock(ns, "agent-b", ttl_s=1)
    assert not c.acquire_lock(ns, "agent-a")
    c.wait(2.5)  # the lease expires: another holder takes it over
    assert c.acquire_lock(ns, "agent-a")
    assert c.get("Lease", LOCK_NAME, ns)["spec"]["holderIdentity"] == "agent-a"


def _revisions(backend: Backend) -> dict[str, str]:
    """Image of each ReplicaSet's template -> its revision annotation."""
    rss = backend.cluster.list("ReplicaSet", backend.namespace, {"app": "web"})
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["metadata"]["annotations"][REVISION]
            for rs in rss}


def test_rollout_undo_reuses_the_old_replicaset_with_a_new_revision(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    backend.create(deployment(image="nginx:1.27"))
    backend.eventually(lambda: _revisions(backend) == {"nginx:1.27": "1"}, "first ReplicaSet")
    assert backend.act("set_image", "Deployment", "web", images={"main": "nginx:bad"}).ok
    backend.eventually(lambda: _revisions(backend) == {"nginx:1.27": "1", "nginx:bad": "2"}, "second ReplicaSet")
    res = backend.act("rollout_undo", "Deployment", "web")
    assert res.ok and res.message == "deployment.apps/web rolled back", res.message
    assert c.get("Deployment", "web", ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    # the controller re-uses the old ReplicaSet and moves it to the next revision (no third ReplicaSet)
    backend.eventually(lambda: _revisions(backend) == {"nginx:1.27": "3", "nginx:bad": "2"}, "revision 3")
    assert backend.act("rollout_undo", "Deployment", "web").ok  # undo the undo: back to nginx:bad
    assert c.get("Deployment", "web", ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:bad"
    backend.eventually(lambda: _revisions(backend) == {"nginx:1.27": "3", "nginx:bad": "4"}, "revision 4")
    res = backend.act("rollout_undo", "Deployment", "web", to_revision=9)
    assert not res.ok and "unable to find specified revision 9" in res.message
    assert backend.act("rollout_undo", "Deployment", "web", to_revision=3).ok  # by number: back to nginx:1.27
    assert c.get("Deployment", "web", ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    backend.eventually(lambda: _revisions(backend) == {"nginx:1.27": "5", "nginx:bad": "4"}, "revision 5")
    # undoing to the live template changes nothing, in kubectl's words (the revision asked for; 0 when none)
    res = backend.act("rollout_undo", "Deployment", "web", to_revision=5)
    assert res.ok and not res.changed, res.message
    assert res.message == "deployment.apps/web skipped rollback (current template already matches revision 5)"
    assert c.get("Deployment", "web", ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert _revisions(backend) == {"nginx:1.27": "5", "nginx:bad": "4"}


def test_strategic_merge_of_service_ports_is_by_port(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    backend.create(service())
    # the same port number: merged into the existing entry, whose name stays
    assert backend.act("patch", "Service", "web", patch={"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}).ok
    ports = c.get("Service", "web", ns)["spec"]["ports"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == [("http", 80, 9090)]
    # a new port number: added, before the live-only items (apimachinery's strategic merge order)
    assert backend.act("patch", "Service", "web",
                       patch={"spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}).ok
    ports = c.get("Service", "web", ns)["spec"]["ports"]
    assert [(p["name"], p["port"]) for p in ports] == [("https", 443), ("http", 80)]
    # the same name on another port is a new entry: the server refuses the duplicate name
    res = backend.act("patch", "Service", "web", patch={"spec": {"ports": [{"name": "http", "port": 81}]}})
    assert not res.ok and "Duplicate value" in res.message, res.message
    assert backend.act("patch", "Service", "web", patch={"spec": {"ports": [{"port": 443, "$patch": "delete"}]}}).ok
    assert [p["port"] for p in c.get("Service", "web", ns)["spec"]["ports"]] == [80]


def test_strategic_merge_of_containers_is_by_name(backend: Backend) -> None:
    c, ns = backend.cluster, backend.namespace
    backend.create(deployment())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox:1",
                                                            "env": [{"name": "A", "value": "1"}]}]}}}}
    assert backend.act("patch", "Deployment", "web", patch=patch).ok
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}]}}}}
    assert backend.act("patch", "Deployment", "web", patch=patch).ok
    cs = c.get("Deployment", "web", ns)["spec"]["template"]["spec"]["containers"]
    want = [{"name": "main", "image": "busybox:1", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}]
    assert project(cs, want) == want
