"""``stratus run`` on the real control plane, as the shipped ServiceAccount, with a loopback HTTP server
standing in for Prometheus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from kube_manifests import create, deployment
from testkit import http_server, send_json
from typer.testing import CliRunner

from stratus.cli import app
from stratus.cluster.base import NotFound
from stratus.cluster.kube import LOCK_NAME, KubeCluster


class _Prometheus(BaseHTTPRequestHandler):
    """Prometheus's HTTP API with no series; it serves ``firing`` as its alerts and records the queries."""

    queries: list[str] = []
    firing: list[dict[str, Any]] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        url = urlparse(self.path)
        self.queries.append(parse_qs(url.query).get("query", [url.path])[0])
        data: dict[str, Any] = {
            "/api/v1/query": {"resultType": "vector", "result": []},
            "/api/v1/query_range": {"resultType": "matrix", "result": []},
            "/api/v1/alerts": {"alerts": self.firing},
        }.get(url.path, {})
        send_json(self, 200 if data else 404, {"status": "success", "data": data})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    _Prometheus.queries, _Prometheus.firing = [], []
    with http_server(_Prometheus) as port:
        yield f"http://127.0.0.1:{port}"


def _alerts(tmp_path: Path, ns: str) -> Path:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"alerts": [{
        "status": "firing", "labels": {"alertname": "KubeDeploymentReplicasMismatch", "namespace": ns,
                                       "deployment": "web", "severity": "warning"},
        "annotations": {"summary": "web has not matched its expected replicas"},
        "startsAt": "2026-01-01T00:00:00Z"}]}))
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["run", *args])


def test_stratus_run_as_the_service_account(kube: KubeCluster, stratus_kubeconfig: Path, prometheus: str,
                                            tmp_path: Path) -> None:
    ns = kube.namespace
    create(kube, deployment("web"))
    out = _run("--kubeconfig", str(stratus_kubeconfig), "--namespace", ns, "--alerts", str(_alerts(tmp_path, ns)),
               "--prometheus", prometheus, "--db", str(tmp_path / "s.db"))
    assert out.exit_code == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    # Prometheus no longer fires the alert: detection reads the cluster and telemetry and finds nothing open
    assert result["namespace"] == ns and result["outcome"] == "no_incident" and result["transactions"] == []
    assert result["health_history"][0]["phase"] == "detect"
    assert "/api/v1/alerts" in _Prometheus.queries and any("traces_span_metrics" in q for q in _Prometheus.queries)


def test_stratus_run_errors_name_what_to_fix(kube: KubeCluster, admin_kubeconfig: Path, prometheus: str,
                                            tmp_path: Path) -> None:
    ns = kube.namespace
    common = ["--namespace", ns, "--prometheus", prometheus, "--db", str(tmp_path / "s.db")]
    out = _run("--kubeconfig", str(tmp_path / "missing.kubeconfig"), "--alerts", str(_alerts(tmp_path, ns)),
               *common)
    assert out.exit_code == 1 and "cannot load kubeconfig" in out.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('[{"labels": "not a mapping"}]')
    out = _run("--kubeconfig", str(admin_kubeconfig), "--alerts", str(bad), *common)
    assert out.exit_code == 2 and "--alerts" in out.stderr
    out = _run("--kubeconfig", str(admin_kubeconfig), "--alerts", str(_alerts(tmp_path, ns)),
               "--approval", "sometimes", *common)
    assert out.exit_code == 2 and "--approval" in out.stderr



def test_stratus_run_a_whole_incident_as_the_service_account(kube: KubeCluster, stratus_kubeconfig: Path,
                                                              prometheus: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No kubelet, so the pods stay Pending: STRATUS diagnoses them unschedulable, tries a restart, sees it
    change nothing, undoes it through the API (with only the shipped permissions) and escalates."""
    ns = kube.namespace
    create(kube, deployment("web"))
    template = kube.get("Deployment", "web")["spec"]["template"]
    for k, v in {"SETTLE_S": "1", "SETTLE_MAX_S": "2", "WINDOW_S": "5", "BASELINE_S": "5",
                 "RESOLVE_WAIT_S": "2", "ALERT_POLL_S": "1", "MAX_SECONDS": "120"}.items():
        monkeypatch.setenv("STRATUS_" + k, v)  # minutes of settling are for real incidents, not this test
    _Prometheus.firing = [{"labels": {"alertname": "KubeDeploymentReplicasMismatch", "namespace": ns,
                                      "deployment": "web", "severity": "warning"},
                           "annotations": {}, "state": "firing", "activeAt": "2026-01-01T00:00:00Z"}]
    out = _run("--kubeconfig", str(stratus_kubeconfig), "--namespace", ns, "--alerts", str(_alerts(tmp_path, ns)),
               "--prometheus", prometheus, "--db", str(tmp_path / "s.db"), "--approval", "never")
    assert out.exit_code == 1, out.stdout + out.stderr  # escalated: not resolved
    r = json.loads(out.stdout)
    assert r["detected"] and r["outcome"] == "escalated" and r["root_cause"]["fault_class"] == "unschedulable"
    assert "no nodes available to schedule pods" in r["root_cause"]["summary"]
    [tx] = r["transactions"]
    assert tx["status"] == "undone" and tx["verdict"] == "ineffective" and r["rollbacks"] == 1
    assert [(a["verb"], a["name"]) for a in tx["actions"]] == [("rollout_restart", "web")]
    assert kube.get("Deployment", "web")["spec"]["template"] == template  # the restart was undone
    with pytest.raises(NotFound):  # and the namespace write lock released
        kube.get("Lease", LOCK_NAME)
