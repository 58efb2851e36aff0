"""The reference analyzers on a real API server: every one runs through KubeCluster without error, a
kind the server or STRATUS does not serve reads as empty and is recorded, and with the shipped RBAC
(no access to Secrets) Secret references are reported unverified, naming the missing permission,
while ConfigMap references are still checked."""

from __future__ import annotations

from kube_manifests import configmap, create, deployment

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
    assert "PodDisruptionBudget" in view.unreadable and "unknown kind" in view.unreadable["PodDisruptionBudget"]


def test_with_the_shipped_rbac_secret_references_are_unverified(kube: KubeCluster, stratus_sa: KubeCluster) -> None:
    create(kube, configmap("api-config", {"mode": "fast"}))
    create(kube, _refs_deployment())
    view = View.read(stratus_sa, stratus_sa.namespace)
    found = REGISTRY["config_refs"](view)
    signals = sorted((f.signal, f.data.get("name") or f.data.get("kind")) for f in found)
    assert signals == [("MissingConfigMap", "api-env"), ("ReferencesUnverified", "Secret")]
    assert "secrets" in view.unreadable["Secret"] and "forbidden" in view.unreadable["Secret"]
