"""Session fixtures for tests against a real Kubernetes control plane (see ``kube_controlplane.py``).

Without the programs the tests skip, saying how to build them; CI sets ``STRATUS_REQUIRE_K8S=1``
(``.ci/run``), which turns that skip into a failure so the real control plane can never silently drop
out of CI. Tests check what the API server stored with the official client (``admin``), never through
the KubeCluster under test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kube_controlplane import ControlPlane, bin_dir, eventually, missing_programs
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient

from stratus.cluster.kube import KubeCluster
from stratus.tools.rbac import manifests


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    missing = missing_programs()
    if missing:
        msg = (f"real control plane not built ({', '.join(missing)} missing in {bin_dir()}): "
               f"run `bash .ci/controlplane.sh` (needs Go >= 1.26 and the Go module proxy; 15-30 min once)")
        if os.environ.get("STRATUS_REQUIRE_K8S") == "1":
            pytest.fail(msg + "; STRATUS_REQUIRE_K8S=1 makes these tests required", pytrace=False)
        pytest.skip(msg)
    cp = ControlPlane(tmp_path_factory.mktemp("controlplane"))
    try:
        cp.start()
        print(f"control plane ready: {cp.timings}")
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def admin_kubeconfig(control_plane: ControlPlane) -> Path:
    return control_plane.kubeconfig("admin")


@pytest.fixture(scope="session")
def admin(admin_kubeconfig: Path) -> DynamicClient:
    """The official client as cluster admin: the tests' independent view of the API server."""
    return DynamicClient(k8s_config.new_client_from_config(config_file=str(admin_kubeconfig)))


@pytest.fixture
def namespace(admin: DynamicClient) -> Iterator[str]:
    """A fresh namespace per test (deleted afterwards; the real controller manager empties it)."""
    ns = f"t-{uuid.uuid4().hex[:8]}"
    core = k8s.CoreV1Api(admin.client)
    core.create_namespace({"metadata": {"name": ns}})
    yield ns
    core.delete_namespace(ns)


@pytest.fixture
def kube(admin_kubeconfig: Path, namespace: str) -> KubeCluster:
    return KubeCluster(kubeconfig=str(admin_kubeconfig), namespace=namespace)


@pytest.fixture
def stratus_kubeconfig(control_plane: ControlPlane, admin: DynamicClient, namespace: str,
                       tmp_path: Path) -> Iterator[Path]:
    """The shipped RBAC objects (``stratus rbac``) applied for the test's namespace, and a kubeconfig
    holding a token of their ServiceAccount (TokenRequest API)."""
    for o in manifests(namespace):
        admin.create(admin.resources.get(api_version=o["apiVersion"], kind=o["kind"]), body=o,
                     namespace=o["metadata"].get("namespace"))
    token = k8s.CoreV1Api(admin.client).create_namespaced_service_account_token(
        "stratus", namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    cfg = yaml.safe_load(control_plane.kubeconfig().read_text())
    cfg["users"][0]["user"] = {"token": token}
    path = tmp_path / "stratus.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    sa = KubeCluster(kubeconfig=str(path), namespace=namespace)
    eventually(lambda: sa.list("Node", limit=1) is not None and sa.get("ServiceAccount", "stratus"),
               what="the RBAC objects taking effect")
    try:
        yield path
    finally:
        rbac = k8s.RbacAuthorizationV1Api(admin.client)
        rbac.delete_cluster_role_binding(f"stratus-{namespace}")
        rbac.delete_cluster_role(f"stratus-{namespace}")


@pytest.fixture
def stratus_sa(stratus_kubeconfig: Path, namespace: str) -> KubeCluster:
    """A KubeCluster with nothing but the shipped RBAC objects' permissions."""
    return KubeCluster(kubeconfig=str(stratus_kubeconfig), namespace=namespace)
