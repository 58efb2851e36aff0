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
from kube_controlplane import ControlPlane, bin_dir, missing_programs
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient

from stratus.cluster.kube import KubeCluster


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
