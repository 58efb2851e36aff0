"""The real control plane itself: the built programs run, the real controllers and scheduler work."""

from __future__ import annotations

import json
import subprocess

from kube_controlplane import ControlPlane, eventually, pinned_versions
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient


def test_kubectl_and_api_server_report_the_pinned_version(control_plane: ControlPlane) -> None:
    out = subprocess.run([str(control_plane.bin / "kubectl"), "--kubeconfig", str(control_plane.kubeconfig()),
                          "version", "-o", "json"], capture_output=True, text=True, timeout=60, check=True)
    versions = json.loads(out.stdout)
    kube, _ = pinned_versions()
    assert versions["clientVersion"]["gitVersion"] == kube
    assert versions["serverVersion"]["gitVersion"] == kube


def test_rbac_is_on(control_plane: ControlPlane) -> None:
    nobody = control_plane.add_user("nobody")
    out = subprocess.run([str(control_plane.bin / "kubectl"), "--kubeconfig", str(nobody), "get", "pods", "-A"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and 'User "nobody" cannot list resource "pods"' in out.stderr


def test_controller_manager_and_scheduler_do_their_work(admin: DynamicClient, namespace: str) -> None:
    core, apps = k8s.CoreV1Api(admin.client), k8s.AppsV1Api(admin.client)
    # the service-account controller gives every namespace its default ServiceAccount
    eventually(lambda: core.read_namespaced_service_account("default", namespace), what="default ServiceAccount")
    apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
    # deployment controller -> ReplicaSet -> replicaset controller -> Pod -> scheduler: no node to bind to
    pod = eventually(lambda: core.list_namespaced_pod(namespace, label_selector="app=web").items, what="a pod")[0]

    def unschedulable() -> bool:
        conds = core.read_namespaced_pod(pod.metadata.name, namespace).status.conditions or []
        return any(c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable" for c in conds)

    eventually(unschedulable, what="the scheduler marking the pod Unschedulable")
