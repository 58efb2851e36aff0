"""The twin's real models behind the kubelet agent (``twin.mirror``) on the real control plane: app pods
become Ready through the process model and the manifest's probes, a broken container crash-loops with
kubelet Events aggregated, faults are applied through the API by the twin's own injectors, and the
mirror's TSDB holds the pods' series."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_controlplane import eventually
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient

from stratus.twin.apps import load_app
from stratus.twin.faults import FaultError
from stratus.twin.kubelet_agent import KubeletAgent
from stratus.twin.prom.query import eval_instant

APP = load_app("hotel-reservation")
APP_NS = f"hotel-{uuid.uuid4().hex[:6]}"  # where the module's agent runs the app's traffic


@pytest.fixture(scope="module")
def agent(admin_kubeconfig: Path, admin: DynamicClient) -> Iterator[KubeletAgent]:
    a = KubeletAgent(k8s_config.new_client_from_config(config_file=str(admin_kubeconfig)), nodes=2,
                     prefix=f"mirror-{uuid.uuid4().hex[:6]}", interval_s=0.3, lease_renew_s=2.0, objects_s=0.3,
                     scrape_s=1.0, rule_s=1.0, namespace=APP_NS)
    a.start()
    yield a
    a.stop()
    core = k8s.CoreV1Api(admin.client)
    for n in a.nodes:
        core.delete_node(n)


def _deploy(admin: DynamicClient, ns: str, comp: str, change: Any = None) -> None:
    d = APP.deployment(comp, ns)
    if change:
        change(d["spec"]["template"]["spec"]["containers"][0])
    k8s.AppsV1Api(admin.client).create_namespaced_deployment(ns, d)
    k8s.CoreV1Api(admin.client).create_namespaced_service(ns, APP.service(comp, ns))


def _available(admin: DynamicClient, ns: str, *names: str) -> None:
    apps = k8s.AppsV1Api(admin.client)
    for name in names:
        eventually(lambda n=name: (apps.read_namespaced_deployment(n, ns).status.available_replicas or 0) >= 1,
                   30, f"Deployment {ns}/{name} Available")


def _backends(admin: DynamicClient, agent: KubeletAgent, ns: str) -> None:
    """consul and mongodb-geo serving, and their Endpoints in the agent's mirror (geo dials them)."""
    for comp in ("consul", "mongodb-geo"):
        _deploy(admin, ns, comp)
    _available(admin, ns, "consul", "mongodb-geo")
    store = agent.world.store

    def mirrored() -> bool:
        with agent.lock:
            return all(store.exists("Endpoints", c, ns) and store.get("Endpoints", c, ns).get("subsets")
                       for c in ("consul", "mongodb-geo"))
    eventually(mirrored, 15, "Endpoints of consul and mongodb-geo in the mirror")


def _pods(admin: DynamicClient, ns: str, comp: str) -> list[Any]:
    return [p for p in k8s.CoreV1Api(admin.client).list_namespaced_pod(
        ns, label_selector=f"{APP.label_key}={comp}").items if p.metadata.deletion_timestamp is None]


def _events(admin: DynamicClient, ns: str, pod: str) -> dict[str, Any]:
    """The pod's Events by reason (the last one of each)."""
    evs = k8s.CoreV1Api(admin.client).list_namespaced_event(ns, field_selector=f"involvedObject.name={pod}").items
    return {e.reason: e for e in evs}


def _query(agent: KubeletAgent, expr: str) -> list[tuple[dict[str, str], float]]:
    with agent.lock:
        return list(eval_instant(agent.world.tsdb, expr, agent.world.clock.now))


def test_app_ready_through_process_model_and_probes(agent: KubeletAgent, admin: DynamicClient,
                                                    namespace: str) -> None:
    _backends(admin, agent, namespace)
    _deploy(admin, namespace, "geo", lambda c: c.update(readinessProbe={
        "tcpSocket": {"port": 8083}, "periodSeconds": 1, "failureThreshold": 3}))
    _available(admin, namespace, "geo")
    pod = _pods(admin, namespace, "geo")[0]
    cs = pod.status.container_statuses[0]
    assert pod.status.phase == "Running" and cs.ready and cs.restart_count == 0
    assert cs.state.running and cs.container_id.startswith("twin://")
    assert {"Pulled", "Created", "Started"} <= set(_events(admin, namespace, pod.metadata.name))
    with agent.lock:
        log = [line for _, line in agent.world.logs.read(namespace, pod.metadata.name, cs.name)]
    assert any("Successfully registered in consul" in line for line in log), log

    # the manifest's probe decides readiness: probing a port nothing listens on keeps the new pod unready
    k8s.AppsV1Api(admin.client).patch_namespaced_deployment("geo", namespace, {"spec": {"template": {"spec": {
        "containers": [{"name": cs.name, "readinessProbe": {"tcpSocket": {"port": 9999}, "periodSeconds": 1}}]}}}})

    def unhealthy() -> Any:
        for p in _pods(admin, namespace, "geo"):
            ev = _events(admin, namespace, p.metadata.name).get("Unhealthy")
            if ev and ":9999: connect: connection refused" in ev.message:
                return p
        return None
    eventually(unhealthy, 30, "a Readiness probe failure on port 9999 reported as an Unhealthy Event")
    new = unhealthy()
    assert new.status.container_statuses[0].state.running and not new.status.container_statuses[0].ready
    assert pod.metadata.name in {p.metadata.name for p in _pods(admin, namespace, "geo")}  # rollout waits


def test_broken_container_crash_loops(agent: KubeletAgent, admin: DynamicClient, namespace: str) -> None:
    _deploy(admin, namespace, "geo", lambda c: c.update(command=["geo-server"]))  # not in the image

    def looping() -> Any:
        pods = _pods(admin, namespace, "geo")
        cs = pods and pods[0].status.container_statuses and pods[0].status.container_statuses[0]
        return pods[0] if cs and cs.restart_count >= 2 and cs.state.waiting \
            and cs.state.waiting.reason == "CrashLoopBackOff" else None
    eventually(looping, 40, "geo crash-looping with 2 restarts")
    pod = looping()
    cs = pod.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 128 and cs.last_state.terminated.reason == "Error"
    assert pod.status.phase == "Running" and not cs.ready
    name = pod.metadata.name

    def backoff_count() -> int:
        ev = _events(admin, namespace, name).get("BackOff")
        return ev.count if ev else 0
    eventually(lambda: backoff_count() >= 2, 15, "the BackOff Event aggregated (count >= 2)")
    backoff = _events(admin, namespace, name)["BackOff"]
    assert backoff.type == "Warning" and backoff.source.component == "kubelet"
    assert backoff.message.startswith(f"Back-off restarting failed container {cs.name} in pod {name}_{namespace}")
    assert _events(admin, namespace, name)["Started"].count >= 2
    with agent.lock:
        previous = [line for _, line in agent.world.logs.read(namespace, name, cs.name, previous=True)]
    assert previous == ['exec: "geo-server": executable file not found in $PATH']

    # telemetry: the mirror's kube-state-metrics series and the crash-loop alert rule
    sel = f'namespace="{namespace}", pod="{name}"'
    eventually(lambda: _query(agent, f"kube_pod_container_status_restarts_total{{{sel}}} >= 2"), 10,
               "restart count >= 2 in the mirror's TSDB")
    assert _query(agent, f'kube_pod_container_status_waiting_reason{{{sel}, reason="CrashLoopBackOff"}} == 1')
    with agent.lock:
        alerts = [a for a in agent.world.rules.alerts() if a.labels.get("pod") == name]
    assert {a.labels["alertname"] for a in alerts} >= {"KubePodCrashLooping"}


def test_faults_through_the_api(agent: KubeletAgent, admin: DynamicClient, namespace: str) -> None:
    core = k8s.CoreV1Api(admin.client)
    _backends(admin, agent, namespace)
    _deploy(admin, namespace, "geo")
    _available(admin, namespace, "geo")
    before = _pods(admin, namespace, "geo")[0].metadata.name

    # a runtime fault: the role revoked in the twin's database, the clients restarted through the API
    rec = agent.inject_fault("revoke_db_role", "mongodb-geo", namespace=namespace)
    assert rec["applied"] == [f"delete Pod {namespace}/{before}"]
    with agent.lock:
        assert agent.world.databases(namespace)["mongodb-geo"]["users"]["admin"]["roles"] == [
            {"role": "userAdminAnyDatabase", "db": "admin"}]

    def crashing() -> Any:
        pods = [p for p in _pods(admin, namespace, "geo") if p.metadata.name != before]
        cs = pods and pods[0].status.container_statuses and pods[0].status.container_statuses[0]
        return pods[0] if cs and cs.last_state and cs.last_state.terminated else None
    eventually(crashing, 30, "the replacement geo pod failing at start-up")
    new = crashing()
    with agent.lock:
        log = [line for previous in (False, True)
               for _, line in agent.world.logs.read(namespace, new.metadata.name, None, previous)]
    assert any("not authorized on geo-db" in line for line in log), log
    assert before not in {p.metadata.name for p in core.list_namespaced_pod(namespace).items}

    # an object change: the injector's Service edit, replayed as a replace
    rec = agent.inject_fault("service_target_port", "mongodb-geo", namespace=namespace)
    assert rec["original"] == {"targetPort": 27017}
    assert rec["applied"] == [f"update Service {namespace}/mongodb-geo"]
    assert core.read_namespaced_service("mongodb-geo", namespace).spec.ports[0].target_port == 9999

    with pytest.raises(FaultError, match="needs a database"):
        agent.inject_fault("revoke_db_role", "geo", namespace=namespace)


def test_app_traffic_in_telemetry(agent: KubeletAgent, admin: DynamicClient) -> None:
    """The whole app: its load generator's requests walk the call graph through the mirror's network and
    processes, and the span metrics reach the TSDB."""
    core = k8s.CoreV1Api(admin.client)
    core.create_namespace({"metadata": {"name": APP_NS}})
    try:
        backends = [c for c in APP.components if APP.kind_of(c) != "app"]
        for comp in backends:
            _deploy(admin, APP_NS, comp)
        _available(admin, APP_NS, *backends)

        def mirrored() -> bool:
            with agent.lock:
                return all((agent.world.store.get("Endpoints", c, APP_NS).get("subsets")
                            if agent.world.store.exists("Endpoints", c, APP_NS) else None) for c in backends)
        eventually(mirrored, 15, "the backends' Endpoints in the mirror")
        for comp in APP.app_services():
            _deploy(admin, APP_NS, comp)
        _available(admin, APP_NS, *APP.app_services())
        ok = f'traces_span_metrics_calls_total{{namespace="{APP_NS}", service_name="%s", span_kind="SPAN_KIND_SERVER", status_code="STATUS_CODE_UNSET"}} > 0'
        for svc in ("frontend", "search", "geo", "profile"):
            eventually(lambda s=svc: _query(agent, ok % s), 15, f"requests served by {svc} in the TSDB")

        # requests failed while the app services were starting; once all serve, errors stop growing
        errors = f'sum(traces_span_metrics_calls_total{{namespace="{APP_NS}", status_code="STATUS_CODE_ERROR"}})'

        def no_new_errors() -> bool:
            before = _query(agent, errors)
            time.sleep(2.5)  # two scrapes later
            return _query(agent, errors) == before
        eventually(no_new_errors, 30, "no new failed requests once every service serves")
    finally:
        core.delete_namespace(APP_NS)


def test_cli_serve_injects_fault(admin_kubeconfig: Path, admin: DynamicClient, namespace: str) -> None:
    """``stratus twin serve --fault TYPE:TARGET`` applies the injector through the API after --fault-after."""
    apps, node = k8s.AppsV1Api(admin.client), f"cli-{uuid.uuid4().hex[:6]}"
    _deploy(admin, namespace, "consul")
    proc = subprocess.Popen([sys.executable, "-m", "stratus.cli", "twin", "serve", "--kubeconfig",
                             str(admin_kubeconfig), "--prefix", node, "--namespace", namespace, "--interval", "0.3",
                             "--fault", "scale_to_zero:consul", "--fault", "revoke_db_role:consul",
                             "--fault-after", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        eventually(lambda: apps.read_namespaced_deployment("consul", namespace).spec.replicas == 0, 30,
                   "Deployment consul scaled to 0 by the CLI's fault")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        text = " ".join(out.split())  # the console wraps long lines
        assert f"fault scale_to_zero on consul: update Deployment {namespace}/consul" in text
        assert "fault revoke_db_role not injected" in text and "needs a database as target" in text
    finally:
        if proc.poll() is None:
            proc.kill()
        k8s.CoreV1Api(admin.client).delete_node(f"{node}-0")
