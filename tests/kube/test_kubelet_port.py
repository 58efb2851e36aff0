"""The twin's kubelet port behind the real API server: ``kubectl logs``/``exec`` and ``KubeCluster``'s
logs, ``read_db`` and ``exec`` go through kube-apiserver to ``kubelet_server`` at the Node's 127.0.0.1
address and advertised port, and come back with the twin's lines, the twin's database answers and the
real kubelet's error texts."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
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

from stratus.cluster.actions import Action, ActionResult
from stratus.cluster.base import ClusterError, omitted_marker
from stratus.cluster.dbshell import parse_state, redacted_argv
from stratus.cluster.kube import KubeCluster
from stratus.tools.kubectl.commands import parse
from stratus.tools.kubectl.verbs.db import parse_db_command
from stratus.tools.kubectl.verbs.exec import inverse, state_read
from stratus.twin.kubelet_agent import KubeletAgent
from stratus.twin.kubelet_exec import db_exec_handler
from stratus.twin.kubelet_logs import LogRequestError, parse_options, render
from stratus.twin.kubelet_server import KubeletServer
from stratus.twin.world import Logs, World


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


# --- exec: catalogued database commands over pods/exec -----------------------------------------
@pytest.fixture
def world() -> World:
    return World("hotel-reservation")


@pytest.fixture
def db_agent(admin_kubeconfig: Path, admin: DynamicClient, world: World) -> Iterator[KubeletAgent]:
    a = KubeletAgent(k8s_config.new_client_from_config(config_file=str(admin_kubeconfig)), nodes=1,
                     prefix=f"exec-{uuid.uuid4().hex[:6]}", interval_s=0.3, serve_port=True, kubelet_port=0,
                     exec_handler=db_exec_handler(world, parse_db_command))
    a.start()
    yield a
    a.stop()
    k8s.CoreV1Api(admin.client).delete_node(a.nodes[0])


@pytest.fixture
def mongo(db_agent: KubeletAgent, admin: DynamicClient, namespace: str, world: World) -> str:
    """Deployment mongodb-geo (its container named as the app names it) running on the twin's node."""
    labels = {world.app.label_key: "mongodb-geo"}
    k8s.AppsV1Api(admin.client).create_namespaced_deployment(namespace, {
        "metadata": {"name": "mongodb-geo"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"nodeName": db_agent.nodes[0], "containers": [
                {"name": world.app.container_name("mongodb-geo"), "image": "mongo:4.4.6"}]}}}})
    core = k8s.CoreV1Api(admin.client)
    eventually(lambda: [p for p in core.list_namespaced_pod(namespace).items if p.status.phase == "Running"],
               60, "a running mongodb-geo pod")
    return "mongodb-geo"


def _grant(ns: str, user: str, role: str = "read") -> Action:
    return parse(f"kubectl exec deployment/mongodb-geo -n {ns} -- mongo --eval "
                 f"\"db.getSiblingDB('admin').grantRolesToUser('{user}',[{{role:'{role}',db:'geo-db'}}])\"")


def test_node_declares_websocket_exec(db_agent: KubeletAgent, admin: DynamicClient) -> None:
    node = k8s.CoreV1Api(admin.client).read_node(db_agent.nodes[0])
    assert node.status.declared_features == ["ExtendWebSocketsToKubelet"]


def test_db_commands_round_trip(mongo: str, kube: KubeCluster, namespace: str, world: World) -> None:
    grant = _grant(namespace, "admin")
    before = kube.read_db(state_read(grant))
    assert before == {"user": "admin", "db": "admin", "roles": world.db["mongodb-geo"]["users"]["admin"]["roles"]}
    assert {"role": "read", "db": "geo-db"} not in before["roles"]

    dry = kube.apply(grant, dry_run=True)
    assert dry.ok and "would run `mongo --eval" in dry.message and "(server dry run)" in dry.message
    assert {"role": "read", "db": "geo-db"} not in world.db["mongodb-geo"]["users"]["admin"]["roles"]

    done = kube.apply(grant)
    assert done.ok and done.message == "{ ok: 1 }", done.message
    assert {"role": "read", "db": "geo-db"} in kube.read_db(state_read(grant))["roles"]
    undo = inverse(grant, before)
    assert undo and all(kube.apply(u).ok for u in undo)
    assert kube.read_db(state_read(grant)) == before


def test_failed_db_command_names_it(mongo: str, kube: KubeCluster, namespace: str) -> None:
    failed = kube.apply(_grant(namespace, "nobody"))
    assert not failed.ok
    assert "`mongo --eval db.getSiblingDB('admin').grantRolesToUser('nobody'" in failed.message
    assert f"in pod {namespace}/mongodb-geo-" in failed.message and "exited with code 1" in failed.message
    assert 'Could not find user "nobody"' in failed.message

    create = parse(f"kubectl exec deployment/mongodb-geo -n {namespace} -- mongo -u root -p s3cret "
                   "--authenticationDatabase admin --eval \"db.getSiblingDB('admin').createUser("
                   "{user:'admin',pwd:'hunter2',roles:[{role:'read',db:'geo-db'}]})\"")
    dup = kube.apply(create)
    assert not dup.ok and "already exists" in dup.message
    assert "s3cret" not in dup.message and "hunter2" not in dup.message and "-p ***" in dup.message

    absent = kube.read_db(state_read(_grant(namespace, "nobody")))
    assert absent == {"user": "nobody", "db": "admin", "absent": True}
    with pytest.raises(ClusterError, match="container nope is not valid for pod mongodb-geo-"):
        kube.read_db(Action(**{**state_read(_grant(namespace, "admin")).model_dump(), "params": {
            **state_read(_grant(namespace, "admin")).params, "container": "nope"}}))


def test_kubectl_exec_through_the_api_server(mongo: str, control_plane: ControlPlane, namespace: str) -> None:
    """The built kubectl (WebSocket v5 to the API server, proxied to the twin's kubelet port)."""
    ok = kubectl(control_plane, "exec", "deploy/mongodb-geo", "-n", namespace, "--", "mongo", "--quiet",
                 "--eval", "db.getSiblingDB('admin').getUser('root')")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("{") and '"user" : "root"' in ok.stdout and 'UUID("' in ok.stdout
    bad = kubectl(control_plane, "exec", "deploy/mongodb-geo", "-n", namespace, "--", "mongo", "--eval",
                  "db.getSiblingDB('admin').dropUser('nobody')")
    assert bad.returncode == 1 and "command terminated with exit code 1" in bad.stderr
    shell = kubectl(control_plane, "exec", "deploy/mongodb-geo", "-n", namespace, "--", "ls")
    assert shell.returncode == 126 and 'exec: "ls": executable file not found' in shell.stderr


def test_exec_without_permission(mongo: str, control_plane: ControlPlane, admin: DynamicClient,
                                 namespace: str) -> None:
    """A user who may read pods and Deployments but not ``pods/exec``: dry run and run both name the permission."""
    rbac = k8s.RbacAuthorizationV1Api(admin.client)
    user = f"reader-{namespace}"
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "reader"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"], "verbs": ["create"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                    "name": "reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
    reader = KubeCluster(kubeconfig=str(control_plane.add_user(user)), namespace=namespace)

    def refused(dry: bool) -> ActionResult | None:  # None until the Role lets the pod lookup through
        res = reader.apply(_grant(namespace, "admin"), dry_run=dry)
        return res if "pods/exec" in res.message else None

    for dry in (True, False):
        res = eventually(lambda dry=dry: refused(dry), 30, "the Role in effect")
        assert not res.ok
        assert f"missing permission `get` and `create` on pods/exec in namespace {namespace}" in res.message


# --- the kubelet's rules without a control plane -------------------------------------------------
def test_log_options_follow_the_kubelet() -> None:
    lines = [(100.0, "a"), (110.0, "b"), (120.5, "c")]
    # tailLines picks from the whole log first, then sinceSeconds drops older lines: one line, not two
    assert render(lines, parse_options({"tailLines": ["2"], "sinceSeconds": ["5"]}), now=125.0) == b"c\n"
    assert render(lines, parse_options({"tail": ["all"]}), now=125.0) == b"a\nb\nc\n"
    assert render(lines, parse_options({"tailLines": ["0"]}), now=125.0) == b""
    assert render(lines, parse_options({"limitBytes": ["3"]}), now=125.0) == b"a\nb"
    assert render(lines[2:], parse_options({"timestamps": ["true"]}), now=125.0) == \
        b"1970-01-01T00:02:00.500000000Z c\n"
    assert render(lines, parse_options({"sinceTime": ["1970-01-01T00:01:50Z"]}), now=125.0) == b"b\nc\n"
    for bad, status in (({"tailLines": ["-1"]}, 422), ({"limitBytes": ["0"]}, 422), ({"previous": ["maybe"]}, 400),
                        ({"sinceSeconds": ["5"], "sinceTime": ["1970-01-01T00:00:00Z"]}, 422)):
        with pytest.raises(LogRequestError) as err:
            parse_options(bad)
        assert err.value.status == status


def test_mongo_shell_answers_parse() -> None:
    """``getUser`` as the mongo 4.4 shell prints it, banner and ``UUID(...)`` included."""
    out = ('MongoDB shell version v4.4.6\nconnecting to: mongodb://127.0.0.1:27017/?compressors=disabled\n'
           'Implicit session: session { "id" : UUID("0b7d6e35-38a8-4c67-9a1a-3ba0b2c9d2f1") }\n'
           'MongoDB server version: 4.4.6\n{\n\t"_id" : "admin.geo",\n\t"userId" : UUID("5d2d"),\n'
           '\t"user" : "geo",\n\t"db" : "admin",\n\t"roles" : [\n\t\t{\n\t\t\t"role" : "readWrite",\n'
           '\t\t\t"db" : "geo-db"\n\t\t}\n\t],\n\t"mechanisms" : [\n\t\t"SCRAM-SHA-1"\n\t]\n}\n')
    read = {"engine": "mongodb", "op": "get_user", "user": "geo", "user_db": "admin"}
    assert parse_state(read, out) == {"user": "geo", "db": "admin", "roles": [{"role": "readWrite", "db": "geo-db"}]}
    assert parse_state(read, "MongoDB shell version v4.4.6\nnull\n")["absent"] is True
    assert parse_state({"op": "get_requirepass"}, "requirepass\nhunter2\n") == {"requirepass": "hunter2"}
    assert redacted_argv({"engine": "valkey", "op": "set_requirepass", "pwd": "x", "auth": "y"}) == \
        ["valkey-cli", "-a", "***", "--no-auth-warning", "CONFIG", "SET", "requirepass", "***"]


def test_exec_is_websocket_only() -> None:
    """An exec request that is no WebSocket upgrade (SPDY, plain HTTP) is refused with what is served."""
    pod = {"spec": {"containers": [{"name": "c"}]}}
    server = KubeletServer(Logs(), lambda ns, name: pod, lambda *_: (0, "", "")).start()
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        req = urllib.request.Request(f"https://127.0.0.1:{server.port}/exec/ns/p/c?command=ls&output=1",
                                     headers={"Upgrade": "SPDY/3.1", "Connection": "Upgrade"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, context=ctx, timeout=10)
        assert err.value.code == 400
        assert "WebSocket only (v5.channel.k8s.io" in err.value.read().decode()
    finally:
        server.stop()


def test_stop_frees_the_port_started_or_not() -> None:
    for started in (True, False):
        server = KubeletServer(Logs(), lambda ns, name: None)
        if started:
            server.start()
        server.stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
