"""KubeCluster against the real API server: reads, every guard-allowed write verb, server-side dry run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from kube_controlplane import eventually, raw
from kube_manifests import act, configmap, create, deployment, service
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from stratus.cluster.actions import Action
from stratus.cluster.base import Cluster, ClusterError, Conflict, NotFound
from stratus.cluster.kube import KubeCluster
from stratus.cluster.kubeapi import RETRY_ATTEMPTS
from stratus.cluster.mutate import RESTARTED_AT


def test_is_a_cluster_and_reads_what_it_created(kube: KubeCluster, admin: DynamicClient) -> None:
    assert isinstance(kube, Cluster)
    create(kube, deployment())
    create(kube, service())
    create(kube, configmap("cfg", {"mode": "fast"}, {"app": "web"}))
    assert raw(admin, "apps/v1", "Deployment", "web", kube.namespace)["spec"]["replicas"] == 2
    d = kube.get("Deployment", "web")
    assert d["kind"] == "Deployment" and d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert kube.get("Service", "web")["spec"]["ports"][0]["port"] == 80
    assert [c["metadata"]["name"] for c in kube.list("ConfigMap", selector={"app": "web"})] == ["cfg"]
    assert {s["kind"] for s in kube.list("Service", namespace=kube.namespace)} == {"Service"}
    with pytest.raises(NotFound, match='"nope" not found'):
        kube.get("Deployment", "nope")
    dup = kube.apply(Action(verb="create", kind="ConfigMap", name="cfg", namespace=kube.namespace,
                            params={"manifest": configmap("cfg", {})}))
    assert not dup.ok and "already exists" in dup.message


def test_list_is_bounded_with_an_omitted_marker(kube: KubeCluster) -> None:
    for i in range(5):
        create(kube, configmap(f"cm{i}", {"i": str(i)}, {"set": "bounded"}))
    out = kube.list("ConfigMap", selector={"set": "bounded"}, limit=2)
    assert [o["metadata"]["name"] for o in out[:2]] == ["cm0", "cm1"]
    assert out[2]["kind"] == "Omitted" and "more configmaps omitted" in out[2]["message"]
    assert len(kube.list("ConfigMap", selector={"set": "bounded"}, limit=10)) == 5


def test_workload_verbs_change_the_stored_deployment(kube: KubeCluster, admin: DynamicClient) -> None:
    create(kube, deployment())
    assert act(kube, "scale", "Deployment", "web", replicas=4).changed
    again = act(kube, "scale", "Deployment", "web", replicas=4)
    assert again.ok and not again.changed and "unchanged" in again.message
    assert act(kube, "set_image", "Deployment", "web", images={"main": "nginx:1.28"}).ok
    assert act(kube, "set_env", "Deployment", "web", env={"LOG_LEVEL": "debug"}).ok
    assert act(kube, "set_resources", "Deployment", "web", limits={"memory": "256Mi"}).ok
    assert act(kube, "rollout_restart", "Deployment", "web").ok
    assert act(kube, "label", "Deployment", "web", set={"tier": "front"}).ok
    assert act(kube, "annotate", "Deployment", "web", set={"owner": "sre"}).ok
    d = raw(admin, "apps/v1", "Deployment", "web", kube.namespace)
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert d["spec"]["replicas"] == 4 and c["image"] == "nginx:1.28"
    assert c["env"] == [{"name": "LOG_LEVEL", "value": "debug"}]
    assert c["resources"]["limits"]["memory"] == "256Mi"
    assert RESTARTED_AT in d["spec"]["template"]["metadata"]["annotations"]
    assert d["metadata"]["labels"]["tier"] == "front" and d["metadata"]["annotations"]["owner"] == "sre"


@pytest.mark.parametrize("ptype,body,check", [
    ("strategic", {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox:1"}]}}}},
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"),
    ("merge", {"metadata": {"labels": {"patched": "yes"}}}, lambda d: d["metadata"]["labels"]["patched"] == "yes"),
    ("json", [{"op": "replace", "path": "/spec/replicas", "value": 0}], lambda d: d["spec"]["replicas"] == 0),
])
def test_patch_types(kube: KubeCluster, admin: DynamicClient, ptype: str, body: Any, check: Any) -> None:
    create(kube, deployment())
    res = act(kube, "patch", "Deployment", "web", type=ptype, patch=body)
    assert res.ok and res.changed, res.message
    assert check(raw(admin, "apps/v1", "Deployment", "web", kube.namespace))


def test_invalid_change_is_refused_with_the_server_message(kube: KubeCluster) -> None:
    create(kube, deployment())
    res = act(kube, "patch", "Deployment", "web", type="merge", patch={"spec": {"replicas": -1}})
    assert not res.ok and "spec.replicas" in res.message and "greater than or equal to 0" in res.message


def test_dry_run_validates_on_the_server_and_changes_nothing(kube: KubeCluster, admin: DynamicClient) -> None:
    create(kube, deployment())
    create(kube, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                  "spec": {"hard": {"pods": "10"}}})
    # generation, not resourceVersion: the real deployment controller may write status meanwhile
    before = raw(admin, "apps/v1", "Deployment", "web", kube.namespace)["metadata"]["generation"]
    for verb, params in [("scale", {"replicas": 9}), ("set_image", {"images": {"main": "x:2"}}),
                         ("rollout_restart", {}), ("patch", {"type": "merge", "patch": {"spec": {"paused": True}}})]:
        res = act(kube, verb, "Deployment", "web", dry_run=True, **params)
        assert res.ok and res.dry_run and "(server dry run)" in res.message, res.message
    assert act(kube, "delete", "ResourceQuota", "q", dry_run=True).ok
    created = kube.apply(Action(verb="create", kind="ConfigMap", name="new", namespace=kube.namespace,
                                params={"manifest": configmap("new", {"a": "b"})}), dry_run=True)
    assert created.ok
    bad = act(kube, "scale", "Deployment", "web", dry_run=True, replicas=-3)
    assert not bad.ok and "greater than or equal to 0" in bad.message  # the server's validation, not ours
    d = raw(admin, "apps/v1", "Deployment", "web", kube.namespace)
    assert d["metadata"]["generation"] == before and d["spec"]["replicas"] == 2
    assert raw(admin, "v1", "ResourceQuota", "q", kube.namespace)["spec"]["hard"]["pods"] == "10"
    with pytest.raises(NotFound):
        kube.get("ConfigMap", "new")


def test_apply_is_server_side_and_delete_removes(kube: KubeCluster, admin: DynamicClient) -> None:
    res = act(kube, "apply", "ConfigMap", "cfg", manifest=configmap("cfg", {"k": "1"}))
    assert res.ok and "created" in res.message
    res = act(kube, "apply", "ConfigMap", "cfg", manifest=configmap("cfg", {"k": "2"}))
    assert res.ok and "configured" in res.message
    stored = raw(admin, "v1", "ConfigMap", "cfg", kube.namespace)
    assert stored["data"] == {"k": "2"}
    assert any(m["manager"] == "stratus" for m in stored["metadata"]["managedFields"])
    create(kube, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
                  "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    assert act(kube, "delete", "NetworkPolicy", "deny").ok
    with pytest.raises(NotFound):
        kube.get("NetworkPolicy", "deny")


def test_node_verbs(admin: DynamicClient, admin_kubeconfig: Any) -> None:
    core = k8s.CoreV1Api(admin.client)
    core.create_node({"metadata": {"name": "node-cordon", "labels": {"kubernetes.io/hostname": "node-cordon"}}})
    try:
        kube = KubeCluster(kubeconfig=str(admin_kubeconfig))
        assert act(kube, "cordon", "Node", "node-cordon").ok
        assert raw(admin, "v1", "Node", "node-cordon")["spec"]["unschedulable"] is True
        assert act(kube, "uncordon", "Node", "node-cordon").ok
        assert not raw(admin, "v1", "Node", "node-cordon")["spec"].get("unschedulable")
        taint = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
        assert act(kube, "taint", "Node", "node-cordon", add=[taint]).ok
        assert taint in raw(admin, "v1", "Node", "node-cordon")["spec"]["taints"]
        assert act(kube, "taint", "Node", "node-cordon", remove=[{"key": "dedicated"}]).ok
        assert taint not in (raw(admin, "v1", "Node", "node-cordon")["spec"].get("taints") or [])
    finally:
        core.delete_node("node-cordon")


def test_rollout_undo_uses_the_real_replicasets(kube: KubeCluster, admin: DynamicClient) -> None:
    create(kube, deployment(image="nginx:1.27"))
    eventually(lambda: len(kube.list("ReplicaSet", namespace=kube.namespace)) == 1, what="first ReplicaSet")
    assert act(kube, "set_image", "Deployment", "web", images={"main": "nginx:bad"}).ok
    eventually(lambda: len(kube.list("ReplicaSet", namespace=kube.namespace)) == 2, what="second ReplicaSet")
    res = act(kube, "rollout_undo", "Deployment", "web")
    assert res.ok, res.message
    d = raw(admin, "apps/v1", "Deployment", "web", kube.namespace)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_a_conflicting_write_is_retried_from_a_fresh_read(kube: KubeCluster, admin: DynamicClient) -> None:
    create(kube, deployment())
    stale = kube.get("Deployment", "web")
    assert act(kube, "label", "Deployment", "web", set={"first": "1"}).ok
    with pytest.raises(Conflict):  # the API server refuses a write based on an old resourceVersion
        kube.api.call("PUT", "Deployment", "web", kube.namespace, body=stale)
    real_call, puts = kube.api.call, []

    def racing_call(method: str, kind: str, *args: Any, **kw: Any) -> Any:
        if method == "PUT" and not puts:  # someone else writes between our GET and our PUT
            puts.append("raced")
            apps = k8s.AppsV1Api(admin.client)
            apps.patch_namespaced_deployment("web", kube.namespace, {"metadata": {"labels": {"other": "x"}}})
        elif method == "PUT":
            puts.append("retried")
        return real_call(method, kind, *args, **kw)

    kube.api.call = racing_call  # type: ignore[method-assign]
    assert act(kube, "scale", "Deployment", "web", replicas=3).ok
    # At least one retry; the real controller manager may also write the Deployment's status between our
    # fresh read and the retried PUT (another conflict, another bounded retry), so not exactly one.
    assert puts[0] == "raced" and puts[1:] and set(puts[1:]) == {"retried"}, puts
    d = raw(admin, "apps/v1", "Deployment", "web", kube.namespace)
    assert d["spec"]["replicas"] == 3 and d["metadata"]["labels"]["other"] == "x"


def _t(ev: dict[str, Any]) -> int:
    """An event's time to the second (``lastTimestamp`` has no finer precision than that)."""
    stamp = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"]["creationTimestamp"]
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def test_events_and_logs(kube: KubeCluster) -> None:
    create(kube, deployment())
    evs = eventually(lambda: [e for e in kube.events(kube.namespace) if e["reason"] == "ScalingReplicaSet"] and
                     kube.events(kube.namespace), what="the deployment controller's ScalingReplicaSet event")
    assert evs[0]["involvedObject"]["kind"] in ("Deployment", "ReplicaSet", "Pod")
    assert [_t(e) for e in evs] == sorted(_t(e) for e in evs)  # oldest first
    cut = kube.events(kube.namespace, limit=1)
    if len(evs) > 1:
        assert cut[0]["kind"] == "Omitted" and len(cut) == 2
    assert kube.events(kube.namespace, since=kube.now() + 3600) == []
    with pytest.raises(NotFound):
        kube.logs("no-such-pod", kube.namespace)
    pod = eventually(lambda: kube.list("Pod", namespace=kube.namespace), what="a pod")[0]["metadata"]["name"]
    # no kubelet: the pod is never bound to a node, and the API server answers an unbound pod's logs empty
    assert kube.logs(pod, kube.namespace) == [] and kube.logs(pod, kube.namespace, previous=True) == []


def test_429_and_5xx_are_retried_and_give_up_after_the_limit(kube: KubeCluster,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    create(kube, deployment())
    real_get, failures = kube.api.dyn.get, [429, 503]

    def flaky_get(*args: Any, **kw: Any) -> Any:
        if failures:
            raise ApiException(status=failures.pop(0), reason="Too Many Requests or Unavailable")
        return real_get(*args, **kw)

    monkeypatch.setattr(kube.api.dyn, "get", flaky_get)
    assert kube.get("Deployment", "web")["spec"]["replicas"] == 2 and failures == []
    calls = []

    def always_down(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        raise ApiException(status=500, reason="Internal Server Error")

    monkeypatch.setattr(kube.api.dyn, "get", always_down)
    with pytest.raises(ClusterError, match="500"):
        kube.get("Deployment", "web")
    assert len(calls) == RETRY_ATTEMPTS
    res = act(kube, "scale", "Deployment", "web", replicas=1)  # a write's error is a result, not a crash
    assert not res.ok and "500" in res.message
