"""A full incident on the real control plane: the twin as kubelet and workload runs hotel-reservation,
a NetworkPolicy blocks search, the twin's Prometheus fires the alert, and ``stratus run`` (as the shipped
ServiceAccount) detects, diagnoses, tries a wrong fix that TNR judges and undoes through the API,
commits the right one and resolves; ``stratus log`` reads the transaction log back. The same scenario on
the in-process twin gives the same diagnosis and the same committed fix (``incident_scenario``).

Timings (app Ready, alert firing, incident end) are printed; ``pytest -s`` shows them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_deploy import deploy_in_waves
from incident_scenario import BYSTANDER, bystander_policy, run_on_twin, scenario
from kube_controlplane import eventually
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from typer.testing import CliRunner

from stratus.cli import app
from stratus.tools.kubectl.verbs.db import parse_db_command
from stratus.twin.apps import load_app
from stratus.twin.kubelet_agent import KubeletAgent
from stratus.twin.kubelet_exec import db_exec_handler
from stratus.twin.prom.http import serve_prometheus

APP = load_app("hotel-reservation")
# Settling and windows sized to the agent's 1-s scrape; resolving waits for the 2-minute rate windows of
# the benchmark alert rules to forget the errors.
RUN_ENV = {"SETTLE_S": "5", "SETTLE_MAX_S": "30", "WINDOW_S": "15", "BASELINE_S": "15", "ALERT_POLL_S": "5",
           "RESOLVE_WAIT_S": "180", "MAX_SECONDS": "280"}


@pytest.fixture
def twin(admin_kubeconfig: Path, admin: DynamicClient, namespace: str) -> Iterator[tuple[KubeletAgent, str]]:
    """The twin as kubelet (2 nodes) running the app's traffic in ``namespace``, and its Prometheus URL."""
    agent = KubeletAgent(k8s_config.new_client_from_config(config_file=str(admin_kubeconfig)), nodes=2,
                         prefix=f"e2e-{uuid.uuid4().hex[:6]}", interval_s=0.5, objects_s=0.5, lease_renew_s=2.0,
                         scrape_s=1.0, rule_s=1.0, namespace=namespace, serve_port=True,
                         exec_handler=lambda *call: run_exec(*call))
    db_exec = db_exec_handler(agent.world, parse_db_command)

    def run_exec(ns: str, pod: str, container: str, argv: list[str]) -> tuple[int, str, str]:
        with agent.lock:
            return db_exec(ns, pod, container, argv)

    agent.start()
    prom = serve_prometheus(agent.world, lock=agent.lock)
    try:
        yield agent, prom.url
    finally:
        prom.close()
        agent.stop()
        for n in agent.nodes:
            k8s.CoreV1Api(admin.client).delete_node(n)


def _deploy(admin: DynamicClient, agent: KubeletAgent, ns: str) -> None:
    """The app through the API in waves (``app_deploy``), each wave's Endpoints seen in the agent's mirror."""
    def mirrored(wave: list[str]) -> bool:
        with agent.lock:
            s = agent.world.store
            return all(s.exists("Endpoints", c, ns) and s.get("Endpoints", c, ns).get("subsets") for c in wave)
    deploy_in_waves(admin, ns, mirrored, "the agent's mirror")


def _prom(url: str, path: str, **params: str) -> Any:
    r = httpx.get(url + path, params=params, timeout=10)
    r.raise_for_status()
    return r.json()


def _firing(url: str, ns: str) -> list[dict[str, Any]]:
    return [a for a in _prom(url, "/api/v1/alerts")["data"]["alerts"]
            if a["state"] == "firing" and a["labels"].get("namespace") == ns]


def _healthy(url: str, ns: str) -> bool:
    """Every app service serves and frontend has answered without errors for 30 s, nothing fires."""
    calls = f'traces_span_metrics_calls_total{{namespace="{ns}", span_kind="SPAN_KIND_SERVER"'
    served = _prom(url, "/api/v1/query", query=f"sum by (service_name) (rate({calls}}}[30s])) > 0")
    errors = _prom(url, "/api/v1/query", query=f'sum(rate({calls}, status_code="STATUS_CODE_ERROR"}}[30s])) > 0')
    names = {r["metric"]["service_name"] for r in served["data"]["result"]}
    return {"frontend", "search", "geo", "rate"} <= names and not errors["data"]["result"] and not _firing(url, ns)


def _policy(admin: DynamicClient, ns: str, name: str) -> dict[str, Any] | None:
    """The NetworkPolicy as a user wrote it (name, labels, spec), or None when it does not exist."""
    pols = k8s.NetworkingV1Api(admin.client).list_namespaced_network_policy(ns).to_dict()["items"]
    for p in pols:
        if p["metadata"]["name"] == name:
            return {"name": name, "labels": p["metadata"]["labels"], "spec": p["spec"]}
    return None


def _steps(tx: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["verb"], a["kind"], a["name"]) for a in tx["actions"]]


def test_full_incident_on_the_real_control_plane(twin: tuple[KubeletAgent, str], admin: DynamicClient,
                                                 namespace: str, stratus_kubeconfig: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    agent, prom = twin
    ns, sc = namespace, scenario()
    [fault] = sc.faults
    row = run_on_twin(sc)  # before RUN_ENV: the twin's incident runs with the default settle and windows
    t0 = time.monotonic()
    _deploy(admin, agent, ns)
    admin.resources.get(api_version="networking.k8s.io/v1", kind="NetworkPolicy").create(
        body=bystander_policy(ns, APP.label_key, fault.target or ""), namespace=ns)
    bystander = _policy(admin, ns, BYSTANDER)
    eventually(lambda: _healthy(prom, ns), 120, "the app serving without errors and no alert firing")
    t_ready = time.monotonic()

    rec = agent.inject_fault(fault.type, fault.target, fault.params, namespace=ns)
    assert rec["applied"] == [f"create NetworkPolicy {ns}/deny-search"]
    eventually(lambda: _firing(prom, ns), 150, "an alert firing in the twin's Prometheus after the fault")
    t_alert = time.monotonic()
    alerts = tmp_path / "alerts.json"
    fired = _prom(prom, "/api/v2/alerts", active="true")
    alerts.write_text(json.dumps(fired))

    for k, v in RUN_ENV.items():
        monkeypatch.setenv("STRATUS_" + k, v)
    db = tmp_path / "stratus.db"
    out = CliRunner().invoke(app, ["run", "--kubeconfig", str(stratus_kubeconfig), "--namespace", ns,
                                   "--alerts", str(alerts), "--prometheus", prom, "--alertmanager", prom,
                                   "--db", str(db), "--approval", "never"])
    t_end = time.monotonic()
    print(f"\nfull incident: app Ready and serving {t_ready - t0:.1f} s, alert firing {t_alert - t_ready:.1f} s after the "
          f"fault ({', '.join(sorted({a['labels']['alertname'] for a in fired}))}), incident end "
          f"{t_end - t_alert:.1f} s after the alert; total {t_end - t0:.1f} s")
    assert out.exit_code == 0, out.stdout + out.stderr
    r = json.loads(out.stdout)
    assert r["detected"] and r["outcome"] == "resolved", r["summary"]
    assert r["root_cause"]["component"] == "search"
    wrong, right = r["transactions"]
    assert _steps(wrong) == [("delete", "NetworkPolicy", BYSTANDER)]
    assert wrong["status"] == "undone" and wrong["verdict"] == "ineffective" and r["rollbacks"] == 1
    assert _steps(right) == [("delete", "NetworkPolicy", "deny-search")] and right["status"] == "committed"
    # undone through the API: the policy it deleted is back as written; the committed fix stands
    assert _policy(admin, ns, BYSTANDER) == bystander
    assert _policy(admin, ns, "deny-search") is None
    assert not _firing(prom, ns)

    log = CliRunner().invoke(app, ["log", r["incident_id"], "--db", str(db)])
    assert log.exit_code == 0, log.stdout + log.stderr
    text = " ".join(log.stdout.split())
    for tx, status, verdict in ((wrong, "undone", "ineffective"), (right, "committed", "commit")):
        assert f"{tx['id']} (attempt {tx['attempt']}): {status}" in text and f"verdict {verdict}:" in text
    assert f"networkpolicy/{BYSTANDER}" in text and "networkpolicy/deny-search" in text and "restore verified" in text

    # the same scenario on the in-process twin: same localization, same committed fix
    twin_ns = sc.namespace or APP.namespace
    committed = [k for t in r["transactions"] if t["status"] == "committed" for k in t["kubectl"]]
    assert row["localized"] == [r["root_cause"]["component"]]
    assert row["actions"][-1:] == [c.replace(f"-n {ns}", f"-n {twin_ns}") for c in committed]
    assert row["actions"][0] == f"kubectl delete networkpolicy/{BYSTANDER} -n {twin_ns}" and row["rollbacks"] == 1
    assert row["outcome"] == "resolved" and row["mitigated"]
