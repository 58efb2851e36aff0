"""The twin pushes its simulated-time series to a real Prometheus by remote write, staleness included."""

from __future__ import annotations

from pathlib import Path

from prom_server import RealPrometheus

from stratus.cluster.promhttp import PrometheusHTTP
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import inject
from stratus.twin.prom.remote_write import RemoteWriter
from tests.conftest import pods_of, warmed_world

PUSH_EVERY_S = 120.0


def _by_labels(data: dict) -> dict[tuple, str]:
    return {tuple(sorted(r["metric"].items())): r["value"][1] for r in data["result"]}


def test_pushed_series_answer_at_simulated_times_and_vanished_series_go_stale(tmp_path: Path):
    world = warmed_world()
    cluster = TwinCluster(world)
    geo_pods = [p["metadata"]["name"] for p in pods_of(world, "geo")]
    with RealPrometheus(tmp_path, {"global": {"scrape_interval": "1m"}}, remote_write_receiver=True) as prom:
        writer = RemoteWriter(prom.url + "/api/v1/write")
        try:
            writer.push(world.tsdb, world.clock.now)
            before = world.clock.now
            inject(world, "scale_to_zero", "geo")
            for _ in range(3):
                world.advance(PUSH_EVERY_S)
                writer.push(world.tsdb, world.clock.now)
        finally:
            writer.close()
        client = PrometheusHTTP(prom.url)
        assert writer.samples_sent > 1000
        # the real Prometheus answers at the twin's simulated times exactly as the twin does
        for q in ("kube_deployment_status_replicas_available", 'sum by (pod) (kube_pod_info{namespace="'
                  + world.namespace + '"})', "rate(container_cpu_usage_seconds_total[2m])"):
            for at in (before, before + 60, world.clock.now):
                real, twin = client.query(q, at=at), cluster.query(q, at=at)
                assert real["result"], (q, at)
                assert _by_labels(real) == _by_labels(twin), (q, at)
        # the deleted geo pods: present before the fault, stale (gone at once, not 5 min later) after it
        q = 'kube_pod_info{pod=~"' + "|".join(geo_pods) + '"}'
        assert {r["metric"]["pod"] for r in client.query(q, at=before)["result"]} == set(geo_pods)
        gone_at = min(s.stale[0] for s in world.tsdb.series("kube_pod_info")
                      if s.labels.get("pod") in geo_pods and s.stale)
        assert gone_at - before < 300, "the pods must vanish well inside the 5-minute lookback"
        assert client.query(q, at=gone_at)["result"] == []
        assert client.query(q, at=gone_at - 1)["result"], "just before the marker the series still answer"
        assert cluster.query(q, at=gone_at)["result"] == []


