"""The twin as kubelet (``twin.kubelet_agent``) on the real control plane: the real controllers and
scheduler plus the agent make Deployments Available, Services get endpoints, unknown images back off,
deleted pods are replaced, and a stopped agent stops renewing its Leases."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_controlplane import eventually
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient

from stratus.twin.kubelet_agent import LEASE_NAMESPACE, KubeletAgent


@pytest.fixture
def agent(admin_kubeconfig: Path, admin: DynamicClient) -> Iterator[KubeletAgent]:
    a = KubeletAgent(k8s_config.new_client_from_config(config_file=str(admin_kubeconfig)), nodes=2,
                     prefix=f"twin-{uuid.uuid4().hex[:6]}", interval_s=0.3,
                     lease_renew_s=2.0)
    a.start()
    yield a
    a.stop()
    core = k8s.CoreV1Api(admin.client)
    for n in a.nodes:  # so later tests in the session see no nodes without a kubelet
        core.delete_node(n)


def _deployment(name: str, image: str, replicas: int = 2) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": image,
                                                           "ports": [{"containerPort": 27017}]}]}}}}


def _pods(core: k8s.CoreV1Api, ns: str, app: str) -> list:
    return [p for p in core.list_namespaced_pod(ns, label_selector=f"app={app}").items
            if p.metadata.deletion_timestamp is None]


def test_nodes_ready_with_leases(agent: KubeletAgent, admin: DynamicClient) -> None:
    core, coord = k8s.CoreV1Api(admin.client), k8s.CoordinationV1Api(admin.client)
    for n in agent.nodes:
        node = core.read_node(n)
        assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
        assert node.status.allocatable["pods"] == "110"
        assert node.status.daemon_endpoints.kubelet_endpoint.port == 10250
        assert any(a.type == "InternalIP" for a in node.status.addresses)
        assert coord.read_namespaced_lease(n, LEASE_NAMESPACE).spec.holder_identity == n


def test_node_marked_unknown_recovers(agent: KubeletAgent, admin: DynamicClient) -> None:
    """After a missed heartbeat the node lifecycle controller marks Ready Unknown and never sets it back
    itself; the agent, as a kubelet, posts its status again."""
    core, node = k8s.CoreV1Api(admin.client), agent.nodes[1]
    core.patch_node_status(node, {"status": {"conditions": [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
         "message": "Kubelet stopped posting node status."}]}})
    eventually(lambda: {c.type: c.status for c in core.read_node(node).status.conditions}["Ready"] == "True", 15,
               f"node {node} Ready again")


def test_deployment_available_with_endpoints(agent: KubeletAgent, admin: DynamicClient, namespace: str) -> None:
    apps, core = k8s.AppsV1Api(admin.client), k8s.CoreV1Api(admin.client)
    apps.create_namespaced_deployment(namespace, _deployment("db", "mongo:4.4.6"))
    core.create_namespaced_service(namespace, {
        "metadata": {"name": "db"}, "spec": {"selector": {"app": "db"}, "ports": [{"port": 27017}]}})
    eventually(lambda: apps.read_namespaced_deployment("db", namespace).status.available_replicas == 2,
               60, "Deployment db Available with 2 replicas")
    pods = _pods(core, namespace, "db")
    assert {p.spec.node_name for p in pods} <= set(agent.nodes)
    for p in pods:
        assert p.status.phase == "Running" and p.status.host_ip
        cs = p.status.container_statuses[0]
        assert cs.ready and cs.started and cs.restart_count == 0 and cs.state.running.started_at
        assert {c.type for c in p.status.conditions} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    ips = {p.status.pod_ip for p in pods}

    def endpoint_ips() -> bool:
        subsets = core.read_namespaced_endpoints("db", namespace).subsets or []
        return {a.ip for s in subsets for a in (s.addresses or [])} == ips
    eventually(endpoint_ips, 30, f"Endpoints of Service db listing {sorted(ips)}")

    # a deleted pod is replaced: the agent finishes the graceful deletion, the ReplicaSet makes a new one
    victim = pods[0].metadata.name
    core.delete_namespaced_pod(victim, namespace)
    eventually(lambda: victim not in {p.metadata.name for p in core.list_namespaced_pod(namespace).items},
               30, f"pod {victim} gone")
    eventually(lambda: apps.read_namespaced_deployment("db", namespace).status.available_replicas == 2
               and victim not in {p.metadata.name for p in _pods(core, namespace, "db")}, 60,
               "Deployment db Available again with a replacement pod")


def test_unknown_image_backs_off(agent: KubeletAgent, admin: DynamicClient, namespace: str) -> None:
    apps, core = k8s.AppsV1Api(admin.client), k8s.CoreV1Api(admin.client)
    apps.create_namespaced_deployment(namespace, _deployment("bad", "nosuch/image:v0", replicas=1))

    def backing_off() -> bool:
        pods = _pods(core, namespace, "bad")
        w = pods and pods[0].status.container_statuses and pods[0].status.container_statuses[0].state.waiting
        return bool(w) and w.reason == "ImagePullBackOff" and w.message == 'Back-off pulling image "nosuch/image:v0"'
    eventually(backing_off, 60, "pod of Deployment bad in ImagePullBackOff")
    pod = _pods(core, namespace, "bad")[0]
    assert pod.status.phase == "Pending"
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "False"
    assert not apps.read_namespaced_deployment("bad", namespace).status.available_replicas


def test_stopped_agent_stops_renewing(agent: KubeletAgent, admin: DynamicClient) -> None:
    coord = k8s.CoordinationV1Api(admin.client)
    node = agent.nodes[0]
    first = coord.read_namespaced_lease(node, LEASE_NAMESPACE).spec.renew_time
    eventually(lambda: coord.read_namespaced_lease(node, LEASE_NAMESPACE).spec.renew_time > first, 10,
               "Lease renewed while the agent runs")
    agent.stop()
    stopped = coord.read_namespaced_lease(node, LEASE_NAMESPACE).spec.renew_time
    time.sleep(2.0)
    assert coord.read_namespaced_lease(node, LEASE_NAMESPACE).spec.renew_time == stopped


def test_cli_serve(admin_kubeconfig: Path, admin: DynamicClient) -> None:
    """``stratus twin serve`` registers its node and stops cleanly on Ctrl-C (SIGINT)."""
    core, node = k8s.CoreV1Api(admin.client), f"cli-{uuid.uuid4().hex[:6]}-0"
    proc = subprocess.Popen([sys.executable, "-m", "stratus.cli", "twin", "serve", "--kubeconfig",
                             str(admin_kubeconfig), "--prefix", node.removesuffix("-0")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        eventually(lambda: {c.type: c.status for c in core.read_node(node).status.conditions}["Ready"] == "True",
                   30, f"node {node} registered Ready by the CLI")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert f"serving as kubelet for {node}" in out
    finally:
        if proc.poll() is None:
            proc.kill()
        core.delete_node(node)
