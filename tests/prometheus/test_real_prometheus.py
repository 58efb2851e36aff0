"""A real Prometheus scrapes the twin's ``/metrics`` and loads the shipped rule files; the production
client (``PrometheusHTTP``) reads the twin's series back from it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prom_server import RealPrometheus, require_programs
from testkit import eventually

from stratus.cluster.promhttp import PrometheusHTTP
from stratus.twin.cluster import TwinCluster
from stratus.twin.prom.http import PrometheusServer, serve_prometheus
from stratus.twin.prom.rules import DATA_DIR, load_rules
from tests.conftest import warmed_world

RULES = DATA_DIR / "rules-benchmark.yaml"
SCRAPE_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TwinCluster, PrometheusServer, RealPrometheus]]:
    """The twin served over HTTP, and a real Prometheus scraping it every second."""
    world = warmed_world()
    with serve_prometheus(world) as twin:
        target = twin.url.removeprefix("http://")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            # the twin's series carry their exporters' job and instance labels: keep them, as
            # kube-prometheus does for kube-state-metrics
            "scrape_configs": [{"job_name": "stratus-twin", "honor_labels": True,
                                "static_configs": [{"targets": [target]}]}],
        }
        workdir: Path = tmp_path_factory.mktemp("prometheus")
        with RealPrometheus(workdir, config) as prom:
            yield TwinCluster(world), twin, prom


def _by_labels(data: dict, drop: tuple[str, ...] = ()) -> dict[tuple, str]:
    return {tuple(sorted((k, v) for k, v in r["metric"].items() if k not in drop)): r["value"][1]
            for r in data["result"]}


def test_prometheus_query_returns_the_twin_series(scraped):
    cluster, twin, prom = scraped
    client = PrometheusHTTP(prom.url)
    q = "kube_deployment_spec_replicas"
    got = eventually(lambda: client.query(q)["result"], SCRAPE_TIMEOUT_S, f"{q} scraped from the twin")
    assert got
    assert _by_labels(client.query(q)) == _by_labels(cluster.query(q))
    # cAdvisor series have no instance label in the twin: Prometheus adds the scrape target's
    q = 'container_memory_working_set_bytes{namespace="test-hotel-reservation"}'
    real = client.query(q)
    assert {r["metric"]["instance"] for r in real["result"]} == {twin.url.removeprefix("http://")}
    assert _by_labels(real, drop=("instance",)) == _by_labels(cluster.query(q))
    up = client.query('up{job="stratus-twin"}')["result"]
    assert [r["value"][1] for r in up] == ["1"]


def test_prometheus_loads_the_shipped_rule_file(scraped):
    _, _, prom = scraped
    groups = httpx.get(prom.url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    loaded = {r["name"]: r["query"] for g in groups for r in g["rules"]}
    assert loaded.keys() == {r.name for r in load_rules(RULES)}


def test_metrics_page_passes_promtool_check_metrics(scraped):
    _, twin, _ = scraped
    promtool = require_programs("promtool")["promtool"]
    page = httpx.get(twin.url + "/metrics", timeout=10).text
    r = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
    # exit 3 = lint findings only (1 would be a format error); the one finding allowed is the
    # OpenTelemetry span-metrics connector's own name, which the twin keeps verbatim
    findings = [line for line in (r.stdout + r.stderr).splitlines() if line.strip()]
    assert r.returncode in (0, 3), findings
    assert all(f.startswith("traces_span_metrics_duration_milliseconds ") for f in findings), findings
