"""The twin's world over time: deterministic for a seed, and bounded in memory over simulated hours."""

from __future__ import annotations

from typing import Any

import pytest

from stratus.tools.kubectl import parse
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import inject
from stratus.twin.store import MAX_EVENTS
from stratus.twin.traffic import MAX_TRACES
from stratus.twin.world import LOG_LINES_PER_CONTAINER, World

NS = "test-hotel-reservation"


def fingerprint(world: World) -> dict[str, Any]:
    """Everything observable that should be a pure function of (seed, steps)."""
    series = sorted((s.name, s.labels.key(), tuple(s.ts), tuple(s.vs)) for s in world.tsdb.all_series())
    return {
        "series": series,
        "alerts": [(a["labels"], a["startsAt"]) for a in world.firing()],
        "pods": sorted(p["metadata"]["name"] for p in world.store.list("Pod", NS)),
        "traces": [(t["traceID"], [(s["service"], s.get("status")) for s in t["spans"]])
                   for t in world.traffic.traces],
        "events": [(e["reason"], e["message"], e["count"]) for e in world.store.events(NS)],
    }


def run(seed: int) -> World:
    w = World("hotel-reservation", seed=seed)
    w.warm_up(300)
    inject(w, "revoke_db_role", "mongodb-geo")
    w.advance(240)
    return w


@pytest.fixture(scope="module")
def seed7_twice() -> tuple[World, World]:
    return run(7), run(7)


def test_same_seed_same_world(seed7_twice: tuple[World, World]) -> None:
    a, b = seed7_twice
    fa, fb = fingerprint(a), fingerprint(b)
    assert fa["alerts"], "the run must produce alerts for the comparison to mean something"
    assert len(fa["series"]) > 500
    for key in fa:
        assert fa[key] == fb[key], f"{key} differs between two runs of seed 7"


def test_different_seed_different_world(seed7_twice: tuple[World, World]) -> None:
    a, _ = seed7_twice
    c = run(8)
    fa, fc = fingerprint(a), fingerprint(c)
    assert fa["pods"] != fc["pods"], "pod name suffixes come from the seed"
    assert fa["series"] != fc["series"], "traffic noise comes from the seed"
    assert {n for n, *_ in fa["series"]} == {n for n, *_ in fc["series"]}, "same metrics, different values"


def test_clock_ticks_and_scrapes_on_schedule() -> None:
    w = World("hotel-reservation", seed=1, tick_s=5.0, scrape_s=15.0)
    t0 = w.clock.now
    w.advance(60)
    assert w.clock.now == t0 + 60
    up = [s for s in w.tsdb.all_series() if s.name == "kube_deployment_spec_replicas"]
    assert up and all(len(s.ts) == 4 for s in up), "one sample per 15 s scrape"


# --- bounded memory over simulated hours --------------------------------------------------------------
RETENTION_S = 600.0


def stats(w: World) -> dict[str, int]:
    live = {(p["metadata"]["name"], c["name"]) for p in w.store.list("Pod") for c in p["spec"]["containers"]}
    return {
        "samples": w.tsdb.sample_count(), "series": w.tsdb.series_count(),
        "max_series_len": max(len(s.ts) for s in w.tsdb.all_series()),
        "events": sum(1 for _ in w.store.events()), "log_buffers": len(w.logs.lines),
        "longest_log": max(len(b) for b in w.logs.lines.values()),
        "traces": len(w.traffic.traces), "kubelet": len(w.kubelet.rt), "cpu": len(w.telemetry.cpu),
        "live_containers": len(live),
    }


@pytest.fixture(scope="module")
def long_run() -> tuple[dict[str, int], dict[str, int], World]:
    """Three simulated hours of a crash-looping service and a rollout restart every 10 minutes."""
    w = World("hotel-reservation", seed=2)
    w.tsdb.retention_s = RETENTION_S
    cluster = TwinCluster(w, warm_up_s=300)
    inject(w, "crashing_image", "geo")
    restart = parse(f"kubectl rollout restart deployment/search -n {NS}")
    marks = {}
    for i in range(18):
        assert cluster.apply(restart).ok
        w.advance(600)
        if i in (5, 17):
            marks[i] = stats(w)
    return marks[5], marks[17], w


def test_tsdb_stays_bounded(long_run: tuple[dict[str, int], dict[str, int], World]) -> None:
    one_hour, three_hours, w = long_run
    assert three_hours["samples"] <= one_hour["samples"] * 1.05
    assert three_hours["series"] <= one_hour["series"] * 1.05
    assert three_hours["max_series_len"] <= (RETENTION_S + w.tsdb.trim_interval_s) / w.scrape_s + 1
    oldest = min(s.ts[0] for s in w.tsdb.all_series())
    assert oldest >= w.clock.now - RETENTION_S - w.tsdb.trim_interval_s


def test_events_logs_traces_stay_bounded(long_run: tuple[dict[str, int], dict[str, int], World]) -> None:
    one_hour, three_hours, _ = long_run
    assert three_hours["events"] <= min(MAX_EVENTS, one_hour["events"] * 1.2 + 20)
    assert three_hours["longest_log"] <= LOG_LINES_PER_CONTAINER
    assert three_hours["log_buffers"] <= three_hours["live_containers"]
    assert three_hours["traces"] <= MAX_TRACES
    assert three_hours["kubelet"] <= three_hours["live_containers"]


def test_cpu_accounting_forgets_deleted_pods(long_run: tuple[dict[str, int], dict[str, int], World]) -> None:
    _, three_hours, _ = long_run
    assert three_hours["cpu"] <= three_hours["live_containers"]


def test_reads_are_bounded_with_omitted_markers(world: World) -> None:
    cluster = TwinCluster(world)
    inject(world, "crashing_image", "geo")
    world.advance(600)
    pod = next(p for p in cluster.list("Pod", NS) if p["metadata"]["name"].startswith("frontend-"))
    lines = cluster.logs(pod["metadata"]["name"], NS, tail=3)
    assert len(lines) == 4 and lines[0].startswith("... ") and lines[0].endswith("more lines omitted")
    assert len(list(world.store.events(NS))) > 5
    events = cluster.events(NS, limit=5)
    assert len(events) == 6
    assert events[0]["kind"] == "Omitted" and "more events omitted" in events[0]["message"]
    pods = cluster.list("Pod", NS, limit=3)
    assert pods[-1]["kind"] == "Omitted" and "more pods omitted" in pods[-1]["message"]
    assert len(cluster.traces(limit=7)) == 7
