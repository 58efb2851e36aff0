"""The shipped RBAC objects on the real API server: STRATUS with the ServiceAccount's token can do every
action the guard allows (as a server dry run), undo its own changes and hold its lock, and gets an error
naming the missing permission for anything else."""

from __future__ import annotations

from typing import Any

import pytest
from kube_controlplane import eventually, raw
from kube_manifests import configmap, create, deployment, service
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError, NotFound
from stratus.cluster.kinds import CHAOS_KINDS, KINDS
from stratus.cluster.kube import LOCK_NAME, KubeCluster
from stratus.tools.kubectl.tables import ALLOW_LIST
from stratus.tools.rbac import resource

PARAMS: dict[str, dict[str, Any]] = {
    "scale": {"replicas": 3}, "patch": {"type": "merge", "patch": {"metadata": {"labels": {"patched": "yes"}}}},
    "set_image": {"images": {"main": "nginx:1.28"}}, "set_env": {"env": {"LOG_LEVEL": "debug"}},
    "set_resources": {"limits": {"memory": "128Mi"}}, "rollout_undo": {}, "rollout_restart": {},
    "delete": {}, "label": {"set": {"tier": "x"}}, "annotate": {"set": {"owner": "sre"}}, "cordon": {},
    "uncordon": {}, "taint": {"add": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
}
# Refusals that are KubeCluster's own limits, not permissions: they must name the limit, never a 403.
def _template(name: str) -> dict[str, Any]:
    return {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}}


def objects(name: str, ns: str) -> dict[str, dict[str, Any]]:
    """One manifest of every kind the allow-list names (cluster-scoped ones named after the namespace)."""
    out: dict[str, dict[str, Any]] = {
        "Deployment": deployment(name, replicas=1),
        "StatefulSet": {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
                        "spec": {"serviceName": name, "replicas": 1, **_template(name)}},
        "DaemonSet": {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                      "spec": _template(name)},
        "Service": service(name), "ConfigMap": configmap(name, {"k": "v"}),
        "Secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
                   "data": {"k": "dg=="}},
        "NetworkPolicy": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name},
                          "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        "ResourceQuota": {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
                          "spec": {"hard": {"pods": "50"}}},
        "LimitRange": {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": name},
                       "spec": {"limits": [{"type": "Container", "default": {"memory": "256Mi"}}]}},
        "PersistentVolumeClaim": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                                  "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}},
        "HorizontalPodAutoscaler": {
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 1, "maxReplicas": 3}},
        "Lease": {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
                  "spec": {"holderIdentity": "someone"}},
        # the fixture's controller manager makes no "default" account: the pod names the one we made
        "Pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"serviceAccountName": "stratus", "containers": [{"name": "main", "image": "nginx:1.27"}]}},
        "Node": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"{ns}-{name}"}},
        "PersistentVolume": {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{ns}-{name}"},
                             "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                      "nfs": {"server": "10.0.0.1", "path": "/x"}}},
    }
    for kind in CHAOS_KINDS:
        out[kind] = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": kind, "metadata": {"name": name},
                     "spec": {"action": "pod-kill"}}
    return out


@pytest.fixture(scope="module")
def chaos_crds(admin: DynamicClient) -> None:
    """Chaos Mesh's kinds as minimal CRDs, under the resource names the RBAC objects grant."""
    ext = k8s.ApiextensionsV1Api(admin.client)
    have = {c.metadata.name for c in ext.list_custom_resource_definition().items}
    for kind in CHAOS_KINDS:
        group, plural, _ = resource(kind)
        if f"{plural}.{group}" in have:
            continue
        ext.create_custom_resource_definition({
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": plural, "listKind": f"{kind}List"},
                     "versions": [{"name": "v1alpha1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
    for kind in CHAOS_KINDS:
        group, plural, _ = resource(kind)
        eventually(lambda n=f"{plural}.{group}": any(c.type == "Established" and c.status == "True" for c in
                                                      ext.read_custom_resource_definition(n).status.conditions or []),
                   what=f"CRD for {kind} established")


def _setup(kube: KubeCluster, admin: DynamicClient) -> dict[str, dict[str, Any]]:
    """As admin: one object of every kind (named ``a``), and a second revision of each workload to roll back to."""
    ns = kube.namespace
    existing = objects("a", ns)
    for m in existing.values():
        create(kube, m)
    apps = k8s.AppsV1Api(admin.client)
    eventually(lambda: apps.list_namespaced_replica_set(ns).items, what="the first ReplicaSet")
    apps.patch_namespaced_deployment("a", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:1.28"}]}}}})
    eventually(lambda: len(apps.list_namespaced_replica_set(ns).items) == 2, what="the second ReplicaSet")
    second = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.28"}]}}}}
    apps.patch_namespaced_stateful_set("a", ns, second)
    apps.patch_namespaced_daemon_set("a", ns, second)
    eventually(lambda: len(apps.list_namespaced_controller_revision(ns).items) == 4,
               what="two ControllerRevisions each of the StatefulSet and the DaemonSet")
    return existing


def _action(verb: str, kind: str, ns: str, existing: dict[str, dict[str, Any]]) -> Action:
    name = existing[kind]["metadata"]["name"]
    namespace = ns if KINDS[kind]["namespaced"] else None
    if verb == "create":
        params: dict[str, Any] = {"manifest": objects("b", ns)[kind]}
    elif verb == "apply":
        params = {"manifest": existing[kind]}
    else:
        params = PARAMS[verb]
    return Action(verb=verb, kind=kind, name=name, namespace=namespace, params=params)  # type: ignore[arg-type]


def test_every_allowed_action_passes_a_server_dry_run(stratus_sa: KubeCluster, kube: KubeCluster,
                                                      admin: DynamicClient, chaos_crds: None) -> None:
    ns = stratus_sa.namespace
    existing = _setup(kube, admin)
    try:
        tried, failed = 0, []
        for verb, kinds in sorted(ALLOW_LIST.items()):
            if verb == "exec":
                continue
            for kind in sorted(kinds):
                res = stratus_sa.apply(_action(verb, kind, ns, existing), dry_run=True)
                tried += 1
                if not (res.ok and res.dry_run):
                    failed.append(f"{verb} {kind}: {res.message}")
        assert not failed, "\n".join(failed)
        assert tried == sum(len(k) for v, k in ALLOW_LIST.items() if v != "exec")
        # server-side apply of an object that does not exist yet creates it (a dry run here too)
        fresh = Action(verb="apply", kind="ConfigMap", name="fresh", namespace=ns,
                       params={"manifest": configmap("fresh", {"k": "v"})})
        res = stratus_sa.apply(fresh, dry_run=True)
        assert res.ok and "created (server dry run)" in res.message, res.message
        # nothing was stored: the dry runs left every object as the admin made it
        assert raw(admin, "apps/v1", "Deployment", "a", ns)["spec"]["replicas"] == 1
        assert not raw(admin, "v1", "Node", f"{ns}-a")["spec"].get("unschedulable")
        assert raw(admin, "v1", "ResourceQuota", "a", ns)["spec"]["hard"] == {"pods": "50"}
    finally:
        k8s.CoreV1Api(admin.client).delete_node(f"{ns}-a")
        k8s.CoreV1Api(admin.client).delete_persistent_volume(f"{ns}-a")


def test_reads_lock_and_undo_work_with_the_service_account(stratus_sa: KubeCluster, kube: KubeCluster) -> None:
    ns = stratus_sa.namespace
    create(kube, deployment("web"))
    create(kube, objects("deny", ns)["NetworkPolicy"])
    assert stratus_sa.get("Deployment", "web")["spec"]["replicas"] == 2
    pods = eventually(lambda: stratus_sa.list("Pod", namespace=ns), what="the deployment's pods")
    pod = pods[0]["metadata"]["name"]
    assert stratus_sa.logs(pod, ns) == []  # no kubelet: an unbound pod's log is empty, and readable
    assert isinstance(stratus_sa.events(ns), list) and stratus_sa.list("ReplicaSet", namespace=ns)
    assert stratus_sa.list("Node") is not None  # cluster-scoped reads come from the ClusterRole
    with pytest.raises(ClusterError, match="missing permission `list` on pods \\(cluster scope\\)"):
        stratus_sa.list("Pod")  # other namespaces are out of reach
    assert stratus_sa.acquire_lock(ns, "stratus-1") and not stratus_sa.acquire_lock(ns, "stratus-2")
    stratus_sa.release_lock(ns, "stratus-1")
    assert stratus_sa.acquire_lock(ns, "stratus-2")
    stratus_sa.release_lock(ns, "stratus-2")
    with pytest.raises(NotFound):  # released: the Lease is deleted
        kube.get("Lease", LOCK_NAME, ns)
    refs = [("Deployment", "web", ns), ("NetworkPolicy", "deny", ns), ("ConfigMap", "made", ns)]
    snap = stratus_sa.snapshot(refs)
    for a in (Action(verb="scale", kind="Deployment", name="web", namespace=ns, params={"replicas": 5}),
              Action(verb="delete", kind="NetworkPolicy", name="deny", namespace=ns),
              Action(verb="create", kind="ConfigMap", name="made", namespace=ns,
                     params={"manifest": configmap("made", {"k": "v"})})):
        res = stratus_sa.apply(a)
        assert res.ok, res.message
    stratus_sa.restore(snap)  # undo: PUT the old Deployment, re-create the NetworkPolicy, delete the ConfigMap
    assert kube.get("Deployment", "web")["spec"]["replicas"] == 2
    assert kube.get("NetworkPolicy", "deny")["spec"]["policyTypes"] == ["Ingress"]
    assert [c["metadata"]["name"] for c in kube.list("ConfigMap") if c["metadata"]["name"] == "made"] == []


def test_the_analyzers_reads_are_granted(stratus_sa: KubeCluster, kube: KubeCluster, admin: DynamicClient) -> None:
    """EndpointSlices, PodDisruptionBudgets and StorageClasses, which analyzers read, with the account's token."""
    ns = stratus_sa.namespace
    create(kube, service("sliced"))
    create(kube, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "budget"},
                  "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "sliced"}}}})
    storage = k8s.StorageV1Api(admin.client)
    sc = f"{ns}-slow"
    storage.create_storage_class({"metadata": {"name": sc}, "provisioner": "kubernetes.io/no-provisioner"})
    try:
        slices = eventually(lambda: [s for s in stratus_sa.list("EndpointSlice", namespace=ns)
                                     if s["metadata"]["labels"].get("kubernetes.io/service-name") == "sliced"],
                            what="the Service's EndpointSlice, read by the service account")
        assert slices[0]["addressType"] == "IPv4"
        assert [p["metadata"]["name"] for p in stratus_sa.list("PodDisruptionBudget", namespace=ns)] == ["budget"]
        assert sc in {c["metadata"]["name"] for c in stratus_sa.list("StorageClass")}
    finally:
        storage.delete_storage_class(sc)


@pytest.mark.parametrize("what,expect", [
    ("read a Secret", "missing permission `get` on secrets in namespace {ns}"),
    ("patch a ClusterRole", "missing permission `get` on clusterroles.rbac.authorization.k8s.io (cluster scope)"),
    ("delete a Deployment elsewhere", "missing permission `delete` on deployments.apps in namespace kube-system"),
    ("create a Pod", "missing permission `create` on pods in namespace {ns}"),
    ("delete a Namespace", "missing permission `delete` on namespaces (cluster scope)"),
])
def test_anything_else_is_a_clear_error(stratus_sa: KubeCluster, what: str, expect: str) -> None:
    ns = stratus_sa.namespace
    expect = expect.format(ns=ns)
    if what == "read a Secret":
        with pytest.raises(ClusterError) as err:
            stratus_sa.get("Secret", "anything")
        assert expect in str(err.value)
        return
    action = {
        "patch a ClusterRole": Action(verb="patch", kind="ClusterRole", name=f"stratus-{ns}",
                                      params={"type": "merge", "patch": {"rules": []}}),
        "delete a Deployment elsewhere": Action(verb="delete", kind="Deployment", name="coredns",
                                                namespace="kube-system"),
        "create a Pod": Action(verb="create", kind="Pod", name="p", namespace=ns,
                               params={"manifest": objects("p", ns)["Pod"]}),
        "delete a Namespace": Action(verb="delete", kind="Namespace", name=ns),
    }[what]
    res = stratus_sa.apply(action)
    assert not res.ok and expect in res.message, res.message
