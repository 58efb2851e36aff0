"""The twin's kubelet port behind the real API server: ``kubectl logs`` and ``KubeCluster.logs`` go
through kube-apiserver to ``kubelet_server`` at the Node's 127.0.0.1 address and advertised port, and
come back with the twin's lines and the real kubelet's error texts."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_controlplane import ControlPlane, eventually
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient

from stratus.cluster.base import ClusterError, omitted_marker
from stratus.cluster.kube import KubeCluster
from stratus.twin.kubelet_agent import KubeletAgent
from stratus.twin.kubelet_server import KubeletServer
from stratus.twin.world import Logs


@pytest.fixture
def agent(admin_kubeconfig: Path, admin: DynamicClient) -> Iterator[KubeletAgent]:
    a = KubeletAgent(k8s_config.new_client_from_config(config_file=str(admin_kubeconfig)), nodes=1,
                     prefix=f"port-{uuid.uuid4().hex[:6]}", interval_s=0.3, serve_port=True, kubelet_port=0)
    a.start()
    yield a
    a.stop()
    k8s.CoreV1Api(admin.client).delete_node(a.nodes[0])


def kubectl(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cp.bin / "kubectl"), f"--kubeconfig={cp.kubeconfig()}", *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": str(cp.workdir)})


def _create_pod(core: k8s.CoreV1Api, ns: str, body: dict[str, Any]) -> None:
    """Create once the namespace's default ServiceAccount exists (admission needs it; a controller makes it)."""
    eventually(lambda: core.read_namespaced_service_account("default", ns), 30, f"ServiceAccount {ns}/default")
    core.create_namespaced_pod(ns, body)


def _running_pod(core: k8s.CoreV1Api, ns: str, name: str, image: str) -> str:
    _create_pod(core, ns, {"metadata": {"name": name}, "spec": {"containers": [{"name": "mongo", "image": image}]}})
    eventually(lambda: core.read_namespaced_pod(name, ns).status.phase == "Running", 60, f"pod {name} Running")
    return name


def test_node_advertises_the_served_port(agent: KubeletAgent, admin: DynamicClient) -> None:
    node = k8s.CoreV1Api(admin.client).read_node(agent.nodes[0])
    assert node.status.daemon_endpoints.kubelet_endpoint.port == agent.kubelet_port != 10250
    assert [a.address for a in node.status.addresses if a.type == "InternalIP"] == ["127.0.0.1"]
    assert not node.status.declared_features  # no exec handler: the API server must not send WebSockets


def test_kubectl_logs_reach_the_twin(agent: KubeletAgent, admin: DynamicClient, control_plane: ControlPlane,
                                     namespace: str, kube: KubeCluster) -> None:
    core = k8s.CoreV1Api(admin.client)
    pod = _running_pod(core, namespace, "db", "mongo:4.4.6")
    agent.logs.now = time.time()
    agent.logs.write({"metadata": {"namespace": namespace, "name": pod}}, "mongo", ["Waiting for connections"])

    out = kubectl(control_plane, "logs", pod, "-n", namespace)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].endswith("mongod starting, listening on port 27017") and lines[1] == "Waiting for connections"
    assert kube.logs(pod, namespace) == lines
    assert kube.logs(pod, namespace, tail=1) == [omitted_marker(2, 1, "lines"), "Waiting for connections"]

    tail = kubectl(control_plane, "logs", pod, "-n", namespace, "--tail=1", "--timestamps")
    stamp, _, text = tail.stdout.strip().partition(" ")
    assert text == "Waiting for connections" and stamp.endswith("Z") and len(stamp) == len("2026-01-01T00:00:00.000000000Z")
    assert kubectl(control_plane, "logs", pod, "-n", namespace, "--limit-bytes=5").stdout == lines[0][:5]


def test_log_errors_are_the_kubelets(agent: KubeletAgent, admin: DynamicClient, control_plane: ControlPlane,
                                     namespace: str, kube: KubeCluster) -> None:
    core = k8s.CoreV1Api(admin.client)
    pod = _running_pod(core, namespace, "db", "mongo:4.4.6")
    prev = kubectl(control_plane, "logs", pod, "-n", namespace, "--previous")
    assert prev.returncode != 0 and f'previous terminated container "mongo" in pod "{pod}" not found' in prev.stderr
    with pytest.raises(ClusterError, match="previous terminated container"):
        kube.logs(pod, namespace, previous=True)
    other = kubectl(control_plane, "logs", pod, "-n", namespace, "-c", "nope")
    assert other.returncode != 0 and "container nope is not valid for pod db" in other.stderr
    with pytest.raises(ClusterError, match="container nope is not valid for pod db"):
        kube.logs(pod, namespace, container="nope")

    _create_pod(core, namespace, {"metadata": {"name": "bad"},
                                  "spec": {"containers": [{"name": "app", "image": "nosuch:1"}]}})
    eventually(lambda: core.read_namespaced_pod("bad", namespace).status.container_statuses, 60, "bad pod status")
    waiting = kubectl(control_plane, "logs", "bad", "-n", namespace)
    assert 'container "app" in pod "bad" is waiting to start' in waiting.stderr


@pytest.fixture
def restarted(admin: DynamicClient, namespace: str) -> Iterator[tuple[str, KubeletServer]]:
    """A Node whose kubelet port is a bare ``KubeletServer`` over a ``Logs`` holding two container
    instances, and a pod on it whose status records the restart (lastState.terminated), as the twin's
    kubelet writes after a crash."""
    core = k8s.CoreV1Api(admin.client)
    logs = Logs()

    def pod(ns: str, name: str) -> dict[str, Any] | None:
        try:
            got = core.read_namespaced_pod(name, ns)
        except k8s.ApiException:
            return None
        return dict(core.api_client.sanitize_for_serialization(got))

    server = KubeletServer(logs, pod).start()
    node = f"restart-{uuid.uuid4().hex[:6]}"
    core.create_node({"metadata": {"name": node}})
    core.patch_node_status(node, {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                             "daemonEndpoints": {"kubeletEndpoint": {"Port": server.port}}}})
    _create_pod(core, namespace, {"metadata": {"name": "geo"}, "spec": {
        "nodeName": node, "containers": [{"name": "geo", "image": "yinfangchen/geo:app3"}]}})
    ref = {"metadata": {"namespace": namespace, "name": "geo"}}
    logs.now = time.time() - 30
    logs.start(ref, "geo", ["Reading config...", "panic: runtime error: invalid memory address"])
    logs.now = time.time()
    logs.start(ref, "geo", ["Reading config..."])
    core.patch_namespaced_pod_status("geo", namespace, {"status": {"phase": "Running", "containerStatuses": [{
        "name": "geo", "image": "yinfangchen/geo:app3", "imageID": "", "ready": True, "restartCount": 1,
        "containerID": "twin://geo-2", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "containerID": "twin://geo-1",
                                     "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:00Z"}},
    }]}})
    try:
        yield "geo", server
    finally:
        server.stop()
        core.delete_node(node)


def test_previous_container_logs(restarted: tuple[str, KubeletServer], control_plane: ControlPlane,
                                 namespace: str, kube: KubeCluster) -> None:
    pod, _server = restarted
    prev = kubectl(control_plane, "logs", pod, "-n", namespace, "--previous")
    assert prev.returncode == 0, prev.stderr
    assert prev.stdout.splitlines() == ["Reading config...", "panic: runtime error: invalid memory address"]
    assert kube.logs(pod, namespace, previous=True)[-1] == "panic: runtime error: invalid memory address"
    assert kube.logs(pod, namespace) == ["Reading config..."]
    # sinceSeconds filters by the line's time: the previous instance wrote 30 s ago
    assert kubectl(control_plane, "logs", pod, "-n", namespace, "--previous", "--since=10s").stdout == ""


def test_node_proxy_refuses_a_loopback_kubelet(agent: KubeletAgent, admin: DynamicClient) -> None:
    """The one API server path that checks the address (``isProxyableHostname``): documented, not worked around."""
    core = k8s.CoreV1Api(admin.client)
    with pytest.raises(k8s.ApiException) as err:
        core.connect_get_node_proxy_with_path(agent.nodes[0], "healthz")
    assert err.value.status == 400 and "address not allowed" in str(err.value.body)


def test_cli_serves_the_kubelet_port(admin_kubeconfig: Path, admin: DynamicClient, control_plane: ControlPlane) -> None:
    """``stratus twin serve`` advertises 127.0.0.1 and a port it serves, and closes it on Ctrl-C."""
    core, node = k8s.CoreV1Api(admin.client), f"cli-{uuid.uuid4().hex[:6]}-0"
    proc = subprocess.Popen([sys.executable, "-m", "stratus.cli", "twin", "serve", "--kubeconfig",
                             str(admin_kubeconfig), "--prefix", node.removesuffix("-0")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = eventually(lambda: core.read_node(node).status.daemon_endpoints.kubelet_endpoint.port, 30,
                          f"node {node} registered by the CLI")
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # self-signed, as the API server accepts
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=10) as r:
            assert r.read() == b"ok"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert f"at 127.0.0.1:{port}" in out
        with pytest.raises(OSError):
            urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        core.delete_node(node)
