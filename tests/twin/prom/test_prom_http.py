"""The twin's Prometheus and Alertmanager HTTP API: the production client sees what the twin sees."""

from __future__ import annotations

import copy
import math
import pickle
import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stratus.cluster.base import ClusterError
from stratus.cluster.promhttp import PrometheusHTTP
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import inject
from stratus.twin.prom.exposition import RULE_SERIES, current_samples
from stratus.twin.prom.http import PrometheusServer, serve_prometheus
from tests.conftest import warmed_world

QUERIES = [
    "kube_pod_status_phase",
    'sum by (namespace, pod) (kube_pod_status_ready{condition="false"})',
    "rate(container_cpu_usage_seconds_total[5m])",
    "histogram_quantile(0.95, sum by (le, service_name) "
    "(rate(traces_span_metrics_duration_milliseconds_bucket[2m])))",
    'ALERTS{alertstate="firing"}',
    "container_memory_working_set_bytes[1m]",
    "1 + 1",
    '"text"',
]


@pytest.fixture(scope="module")
def incident() -> Iterator[tuple[TwinCluster, PrometheusServer]]:
    """A twin whose geo deployment crashes long enough for alerts to fire, served over HTTP."""
    world = warmed_world()
    inject(world, "crashing_image", "geo")
    world.advance(240)
    with serve_prometheus(world) as server:
        yield TwinCluster(world), server


def test_queries_over_http_equal_the_in_process_cluster(incident):
    cluster, server = incident
    client = PrometheusHTTP(server.url)
    for q in QUERIES:
        assert client.query(q) == cluster.query(q), q
    earlier = cluster.now() - 120
    assert client.query("kube_pod_status_phase", at=earlier) == cluster.query("kube_pod_status_phase", at=earlier)
    q = 'sum by (service_name, status_code) (rate(traces_span_metrics_calls_total[2m]))'
    start, end = cluster.now() - 600, cluster.now()
    over_http = client.query_range(q, start, end, 15)
    assert over_http == cluster.query_range(q, start, end, 15)
    assert over_http["result"], "the services must serve requests"


def test_alertmanager_alerts_equal_the_in_process_cluster(incident):
    cluster, server = incident
    alerts = PrometheusHTTP(server.url, alertmanager_url=server.url).alerts()
    assert alerts == cluster.alerts()
    assert "KubePodCrashLooping" in {a["labels"]["alertname"] for a in alerts}
    first = alerts[0]
    assert set(first) >= {"fingerprint", "status", "startsAt", "endsAt", "updatedAt", "receivers", "labels",
                          "annotations", "generatorURL"}
    # without an Alertmanager the client reads Prometheus' /api/v1/alerts: the same firing alerts
    via_prometheus = PrometheusHTTP(server.url).alerts()
    assert sorted(a["labels"]["alertname"] for a in via_prometheus) == \
        sorted(a["labels"]["alertname"] for a in alerts)


def test_alertmanager_filters(incident):
    _, server = incident
    crash = httpx.get(server.url + "/api/v2/alerts", params={"filter": 'alertname="KubePodCrashLooping"'}).json()
    assert crash and {a["labels"]["alertname"] for a in crash} == {"KubePodCrashLooping"}
    assert httpx.get(server.url + "/api/v2/alerts", params={"active": "false"}).json() == []
    bad = httpx.get(server.url + "/api/v2/alerts", params={"filter": "alertname"})
    assert bad.status_code == 400 and "bad matcher format" in bad.json()


def test_prometheus_error_shapes(incident):
    _, server = incident
    cases = [
        ("/api/v1/query", {"query": "sum("}, 400, "bad_data", 'invalid parameter "query"'),
        ("/api/v1/query", {}, 400, "bad_data", "no expression found"),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, "bad_data", 'invalid parameter "time"'),
        ("/api/v1/query_range", {"query": "up", "start": "10", "end": "5", "step": "1"}, 400, "bad_data",
         "end timestamp must not be before start time"),
        ("/api/v1/query_range", {"query": "up", "start": "1", "end": "5"}, 400, "bad_data",
         'invalid parameter "step"'),
        ("/api/v1/series", {}, 400, "bad_data", "no match[] parameter provided"),
    ]
    for path, params, status, error_type, text in cases:
        r = httpx.get(server.url + path, params=params)
        body = r.json()
        assert (r.status_code, body["status"], body["errorType"]) == (status, "error", error_type), (path, params)
        assert text in body["error"]
    with pytest.raises(ClusterError, match="refused the request"):
        PrometheusHTTP(server.url).query("rate(")
    assert httpx.get(server.url + "/api/v1/nothing").status_code == 404


def test_post_form_and_metadata_endpoints(incident):
    cluster, server = incident
    r = httpx.post(server.url + "/api/v1/query", data={"query": "count(kube_pod_info)", "time": str(cluster.now())})
    assert r.json()["data"] == cluster.query("count(kube_pod_info)")
    assert "pod" in httpx.get(server.url + "/api/v1/labels").json()["data"]
    jobs = httpx.get(server.url + "/api/v1/label/job/values").json()["data"]
    assert {"kube-state-metrics", "kubelet"} <= set(jobs)
    series = httpx.get(server.url + "/api/v1/series", params={"match[]": "kube_deployment_spec_replicas"}).json()
    assert {s["deployment"] for s in series["data"]} >= {"geo", "frontend"}
    rules = httpx.get(server.url + "/api/v1/rules").json()["data"]["groups"]
    states = {r["name"]: r["state"] for g in rules for r in g["rules"]}
    assert states["KubePodCrashLooping"] == "firing"
    assert httpx.get(server.url + "/-/ready").status_code == 200


def test_metrics_page_is_the_current_telemetry(incident):
    cluster, server = incident
    r = httpx.get(server.url + "/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    scraped = {}
    types = {}
    for family in text_string_to_metric_families(r.text):
        types[family.name] = family.type
        for s in family.samples:
            scraped[(s.name, tuple(sorted(s.labels.items())))] = s.value
    expected = {(n, tuple(sorted(lab.items()))): v
                for n, lab, v in current_samples(cluster.world.tsdb, cluster.now())}
    assert scraped.keys() == expected.keys()
    assert all(scraped[k] == expected[k] or (math.isnan(scraped[k]) and math.isnan(expected[k])) for k in expected)
    assert not {n for n, _ in scraped} & RULE_SERIES
    assert types["kube_pod_container_status_restarts"] == "counter"
    assert types["traces_span_metrics_duration_milliseconds"] == "histogram"
    assert types["kube_pod_status_phase"] == "gauge"


def test_metrics_page_drops_stale_series():
    world = warmed_world()
    before = {lab["pod"] for n, lab, _ in current_samples(world.tsdb, world.clock.now) if n == "kube_pod_info"}
    inject(world, "scale_to_zero", "geo")
    world.advance(60)
    after = {lab["pod"] for n, lab, _ in current_samples(world.tsdb, world.clock.now) if n == "kube_pod_info"}
    gone = before - after
    assert gone and all(p.startswith("geo-") for p in gone)


def test_queries_while_the_world_steps_under_the_shared_lock():
    world = warmed_world()
    lock = threading.Lock()
    start = world.clock.now
    steps = 40

    def run() -> None:
        for _ in range(steps):
            with lock:
                world.advance(5)

    with serve_prometheus(world, lock=lock) as server:
        stepper = threading.Thread(target=run)
        stepper.start()
        client = PrometheusHTTP(server.url)
        seen = [client.query("count(kube_pod_info)")["result"][0]["value"] for _ in range(15)]
        stepper.join(timeout=60)
        assert not stepper.is_alive()
    times = [t for t, _ in seen]
    assert times == sorted(times) and start <= times[0] and times[-1] <= start + 5 * steps
    assert {v for _, v in seen} == {str(len(world.store.list("Pod", world.namespace)))}


def test_queries_wait_for_the_store_not_for_the_simulation():
    """A pass holding the simulation's lock does not delay a query; a scrape holding the store's does,
    so a query never sees half of one."""
    world = warmed_world()
    sim = threading.Lock()
    with serve_prometheus(world, lock=sim) as server:
        client = PrometheusHTTP(server.url)
        with sim:  # a long pass of the simulation: the API still answers
            assert client.query("count(kube_pod_info)")["result"]
        answered = threading.Event()

        def ask() -> None:
            client.query("count(kube_pod_info)")
            answered.set()
        with world.tsdb.lock:  # a scrape in progress: the query waits for it
            asker = threading.Thread(target=ask)
            asker.start()
            assert not answered.wait(0.5)
        assert answered.wait(10)
        asker.join(timeout=10)


def test_a_copied_or_pickled_store_has_a_lock_of_its_own():
    tsdb = warmed_world().tsdb
    for twin in (copy.deepcopy(tsdb), pickle.loads(pickle.dumps(tsdb))):
        assert twin.lock is not tsdb.lock and twin.lock.acquire(blocking=False)
        twin.lock.release()
        assert twin.series_count() == tsdb.series_count()


def test_a_client_that_hung_up_gets_no_traceback_and_the_connection_is_closed() -> None:
    from stratus.twin.prom.http import _Handler

    class Gone:
        def write(self, _data: bytes) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    handler = _Handler.__new__(_Handler)  # no socket: only the answer path is exercised
    handler.request_version, handler.requestline, handler.close_connection = "HTTP/1.1", "GET /metrics HTTP/1.1", False
    handler.wfile = Gone()  # type: ignore[assignment]
    handler._send(200, b"up 1\n", "text/plain")
    assert handler.close_connection is True
