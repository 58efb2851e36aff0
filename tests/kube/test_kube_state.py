"""KubeCluster against the real API server: snapshot and restore, the Lease lock, RBAC and auth errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml
from kube_controlplane import ControlPlane, eventually, raw
from kube_manifests import act, configmap, create, deployment, service
from kubernetes import client as k8s
from kubernetes.config import incluster_config
from kubernetes.dynamic import DynamicClient

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError, NotFound
from stratus.cluster.kube import LOCK_NAME, KubeCluster
from stratus.cluster.mutate import SERVER_FIELDS


def test_snapshot_restore_round_trip(kube: KubeCluster, admin: DynamicClient) -> None:
    create(kube, deployment())
    create(kube, service())
    create(kube, configmap("cfg", {"mode": "safe"}))
    refs = [("Deployment", "web", kube.namespace), ("Service", "web", kube.namespace),
            ("ConfigMap", "cfg", kube.namespace), ("ConfigMap", "added", kube.namespace)]
    snap = kube.snapshot(refs)
    assert snap[3]["absent"] is True
    for m in snap[:3]:
        assert "status" not in m and not set(SERVER_FIELDS) & set(m["metadata"])
    yaml.safe_dump(snap)  # plain data: a snapshot goes into the transaction log as is
    assert act(kube, "scale", "Deployment", "web", replicas=7).ok
    assert act(kube, "set_image", "Deployment", "web", images={"main": "nginx:broken"}).ok
    assert act(kube, "patch", "Service", "web", type="merge",  # strategic would add a port: merge key is `port`
               patch={"spec": {"ports": [{"name": "http", "port": 81, "targetPort": 9090}]}}).ok
    assert act(kube, "delete", "ConfigMap", "cfg").ok
    create(kube, configmap("added", {"x": "y"}))

    kube.restore(snap)
    d = raw(admin, "apps/v1", "Deployment", "web", kube.namespace)
    assert d["spec"]["replicas"] == 2 and d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    ports = raw(admin, "v1", "Service", "web", kube.namespace)["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in ports] == [(80, 8080)]
    assert raw(admin, "v1", "ConfigMap", "cfg", kube.namespace)["data"] == {"mode": "safe"}
    with pytest.raises(NotFound):
        kube.get("ConfigMap", "added")
    again = kube.snapshot(refs)
    assert again[1]["spec"]["ports"] == snap[1]["spec"]["ports"] and again[3]["absent"] is True
    assert again[2]["data"] == snap[2]["data"]


def test_restore_recreates_a_deleted_service_and_its_deployment(kube: KubeCluster, admin: DynamicClient) -> None:
    create(kube, deployment())
    create(kube, service())
    snap = kube.snapshot([("Deployment", "web", kube.namespace), ("Service", "web", kube.namespace)])
    k8s.CoreV1Api(admin.client).delete_namespaced_service("web", kube.namespace)
    k8s.AppsV1Api(admin.client).delete_namespaced_deployment("web", kube.namespace)
    kube.restore(snap)
    assert raw(admin, "v1", "Service", "web", kube.namespace)["spec"]["ports"][0]["port"] == 80
    assert raw(admin, "apps/v1", "Deployment", "web", kube.namespace)["spec"]["replicas"] == 2


def test_lease_lock_contention(admin_kubeconfig: Path, namespace: str, admin: DynamicClient) -> None:
    a = KubeCluster(kubeconfig=str(admin_kubeconfig), namespace=namespace)
    b = KubeCluster(kubeconfig=str(admin_kubeconfig), namespace=namespace)
    assert a.acquire_lock(namespace, "agent-a")
    assert not b.acquire_lock(namespace, "agent-b")
    assert a.acquire_lock(namespace, "agent-a")  # re-entrant: the holder renews
    lease = raw(admin, "coordination.k8s.io/v1", "Lease", LOCK_NAME, namespace)
    assert lease["spec"]["holderIdentity"] == "agent-a" and lease["spec"]["leaseDurationSeconds"] == 600
    b.release_lock(namespace, "agent-b")  # not the holder: nothing happens
    assert raw(admin, "coordination.k8s.io/v1", "Lease", LOCK_NAME, namespace)["spec"]["holderIdentity"] == "agent-a"
    a.release_lock(namespace, "agent-a")
    with pytest.raises(NotFound):
        b.get("Lease", LOCK_NAME)
    assert b.acquire_lock(namespace, "agent-b")


def test_expired_lease_is_taken_over(admin_kubeconfig: Path, namespace: str, admin: DynamicClient) -> None:
    a = KubeCluster(kubeconfig=str(admin_kubeconfig), namespace=namespace)
    b = KubeCluster(kubeconfig=str(admin_kubeconfig), namespace=namespace)
    assert a.acquire_lock(namespace, "agent-a", ttl_s=30)
    k8s.CoordinationV1Api(admin.client).patch_namespaced_lease(
        LOCK_NAME, namespace, {"spec": {"renewTime": "2020-01-01T00:00:00.000000Z"}})
    assert b.acquire_lock(namespace, "agent-b")
    assert not a.acquire_lock(namespace, "agent-a")


def test_only_one_of_many_concurrent_acquirers_wins(admin_kubeconfig: Path, namespace: str) -> None:
    clusters = [KubeCluster(kubeconfig=str(admin_kubeconfig), namespace=namespace) for _ in range(6)]
    for c in clusters:
        c.api.resource("Lease")  # discovery outside the race, so the requests really overlap
    results: dict[int, bool] = {}
    start = threading.Barrier(len(clusters))

    def grab(i: int) -> None:
        start.wait()
        results[i] = clusters[i].acquire_lock(namespace, f"agent-{i}")

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(len(clusters))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results.values()) == [False] * (len(clusters) - 1) + [True]
    winner = next(i for i, ok in results.items() if ok)
    assert clusters[0].get("Lease", LOCK_NAME)["spec"]["holderIdentity"] == f"agent-{winner}"


def test_forbidden_names_the_missing_permission(control_plane: ControlPlane, admin: DynamicClient,
                                               kube: KubeCluster) -> None:
    create(kube, deployment())
    ns = kube.namespace
    limited = KubeCluster(kubeconfig=str(control_plane.add_user("reader")), namespace=ns)
    res = act(limited, "scale", "Deployment", "web", replicas=3)
    assert not res.ok and f"missing permission `get` on deployments.apps in namespace {ns}" in res.message
    rbac = k8s.RbacAuthorizationV1Api(admin.client)
    rbac.create_namespaced_role(ns, {"metadata": {"name": "read-deploy"}, "rules": [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(ns, {"metadata": {"name": "reader"},
                                             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                         "name": "read-deploy"},
                                             "subjects": [{"kind": "User", "name": "reader"}]})
    eventually(lambda: limited.get("Deployment", "web"), what="the Role taking effect")
    res = act(limited, "scale", "Deployment", "web", replicas=3)
    assert not res.ok and f"missing permission `update` on deployments.apps in namespace {ns}" in res.message
    assert raw(admin, "apps/v1", "Deployment", "web", ns)["spec"]["replicas"] == 2
    with pytest.raises(ClusterError, match="missing permission `get` on leases.coordination.k8s.io"):
        limited.acquire_lock(ns, "reader")


def test_unknown_credentials_are_unauthorized(control_plane: ControlPlane, tmp_path: Path) -> None:
    cfg = yaml.safe_load(control_plane.kubeconfig().read_text())
    cfg["users"][0]["user"] = {"token": "not-a-real-token"}
    path = tmp_path / "bogus.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    res = act(KubeCluster(kubeconfig=str(path), namespace="default"), "scale", "Deployment", "web", replicas=1)
    assert not res.ok and res.message.startswith("unauthorized:")


def test_kubeconfig_context_is_chosen_by_name(control_plane: ControlPlane, tmp_path: Path) -> None:
    cfg = yaml.safe_load(control_plane.kubeconfig().read_text())
    cfg["contexts"].append({"name": "elsewhere", "context": {"cluster": "test", "user": "admin",
                                                             "namespace": "kube-system"}})
    cfg["current-context"] = "missing-on-purpose"
    path = tmp_path / "two.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    kc = KubeCluster(kubeconfig=str(path), context="test")
    assert kc.get("Namespace", "kube-system")["metadata"]["name"] == "kube-system"
    with pytest.raises(ClusterError, match="context nope"):
        KubeCluster(kubeconfig=str(path), context="nope")


def test_in_cluster_config_with_a_service_account_token(admin: DynamicClient, namespace: str, tmp_path: Path,
                                                        control_plane: ControlPlane,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    core, rbac = k8s.CoreV1Api(admin.client), k8s.RbacAuthorizationV1Api(admin.client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "stratus"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "cfg"}, "data": {"k": "v"}})
    token = core.create_namespaced_service_account_token(
        "stratus", namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "cm-read"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "stratus-cm-read"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-read"},
        "subjects": [{"kind": "ServiceAccount", "name": "stratus", "namespace": namespace}]})
    # what the kubelet mounts into a pod, and the variables it sets
    (tmp_path / "token").write_text(token)
    (tmp_path / "ca.crt").write_bytes((control_plane.workdir / "pki" / "ca.crt").read_bytes())
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(control_plane.ports["apiserver"]))
    kc = KubeCluster(namespace=namespace)  # no kubeconfig, inside a "pod": in-cluster config
    assert kc.get("ConfigMap", "cfg")["data"] == {"k": "v"}
    res = kc.apply(Action(verb="label", kind="ConfigMap", name="cfg", namespace=namespace,
                          params={"set": {"x": "y"}}))
    assert not res.ok and f"missing permission `update` on configmaps in namespace {namespace}" in res.message
