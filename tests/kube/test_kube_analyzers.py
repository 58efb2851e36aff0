"""The reference analyzers on a real API server: every one runs through KubeCluster without error, a
kind the server does not serve reads as empty (and costs one discovery refresh a minute), and with the shipped RBAC
(no access to Secrets) Secret references are reported unverified, naming the missing permission,
while ConfigMap references are still checked."""

from __future__ import annotations

from kube_manifests import configmap, create, deployment

from stratus.cluster.kinds import CHAOS_KINDS
from stratus.cluster.kube import KubeCluster
from stratus.tools.analyzers import REGISTRY, View, run_all


def _refs_deployment() -> dict:  # type: ignore[type-arg]
    d = deployment("api", replicas=0)
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["env"] = [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db-pw", "key": "pw"}}},
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "api-config", "key": "mode"}}}]
    c["envFrom"] = [{"configMapRef": {"name": "api-env"}}]
    return d


def test_analyzers_run_on_the_real_api_server(kube: KubeCluster) -> None:
    create(kube, configmap("api-config", {"MODE": "fast"}))
    create(kube, _refs_deployment())
    view, found = run_all(kube, kube.namespace)
    refs = {(f.signal, f.data.get("name")) for f in found if f.source == "config_refs"}
    assert ("MissingConfigMap", "api-env") in refs and ("MissingConfigMapKey", "api-config") in refs
    assert ("MissingSecret", "db-pw") in refs  # the admin may list Secrets: checked by name
    assert not {"PodDisruptionBudget", "StorageClass", "EndpointSlice"} & set(view.unreadable)
    assert kube.list("PodChaos", kube.namespace) == []  # Chaos Mesh is not installed: nothing of it exists


def test_a_kind_not_served_is_remembered_with_its_group(kube: KubeCluster) -> None:
    """A missing kind makes the dynamic client re-read all discovery; a second miss, of the same kind or of
    another kind of the same absent group, does not."""
    resources = kube.api.dyn.resources
    refreshes = []
    invalidate = resources.invalidate_cache
    resources.invalidate_cache = lambda: refreshes.append(1) or invalidate()
    try:
        for kind in CHAOS_KINDS:
            assert kube.list(kind, kube.namespace) == []
        assert kube.list("PodChaos", kube.namespace) == []
        assert len(refreshes) == 1
        assert kube.list("Deployment", kube.namespace) == []  # served kinds are unaffected
    finally:
        resources.invalidate_cache = invalidate


def test_with_the_shipped_rbac_secret_references_are_unverified(kube: KubeCluster, stratus_sa: KubeCluster) -> None:
    create(kube, configmap("api-config", {"mode": "fast"}))
    create(kube, _refs_deployment())
    view = View.read(stratus_sa, stratus_sa.namespace)
    found = REGISTRY["config_refs"](view)
    signals = sorted((f.signal, f.data.get("name") or f.data.get("kind")) for f in found)
    assert signals == [("MissingConfigMap", "api-env"), ("ReferencesUnverified", "Secret")]
    assert "secrets" in view.unreadable["Secret"] and "forbidden" in view.unreadable["Secret"]
