"""How STRATUS's diagnosis cost grows with the namespace (run by hand, never as a test).

    nice -n 19 uv run python bench/diag_scale.py [--pods 20 200 2000] [--rounds 3] [--pods-per-node 30]

For each size the hotel-reservation app runs on the in-process twin with its application services
scaled out (replicas spread evenly over them, the databases and caches kept at one) until the namespace
holds ``--pods`` pods, on one Node per ``--pods-per-node`` pods. ``revoke_db_role`` is injected on
``mongodb-geo`` (every geo replica then crash-loops) and the twin advances until an alert fires. Then
STRATUS's Detection and Diagnosis nodes, the real graph's, compiled to stop after ``diagnose``
(``interrupt_after``), run once untimed (``cold_s``: imports and compiled caches) and then ``--rounds``
times through ``invoke_graph`` with a ``TwinCluster`` and the twin's firing alerts. Each size runs in a child process so its memory is its own: ``world_rss_mb`` is the
resident size with the world built, ``diagnosis_peak_rss_mb`` the peak while diagnosing (the kernel's
high-water mark, reset before the first diagnosis through ``/proc/self/clear_refs``).
Building the world is most of the cost: the 2,000-pod one takes about 4.5 CPU minutes (``build_s``);
``--pods 20 200`` runs in under a minute.
Prints one JSON line per size, then a summary with the medians and the growth between sizes:
``time_ratio`` and the exponent ``log(time ratio) / log(pods ratio)`` (1.0: linear in the pods).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FAULT, FAULT_TARGET = "revoke_db_role", "mongodb-geo"
ALERT_WAIT_S, ALERT_POLL_S = 900.0, 15.0


def _rss_mb(field: str) -> float:
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS; False where Linux refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def scaled_world(pods: int, pods_per_node: int) -> Any:
    """The hotel-reservation twin with ``pods`` pods in its namespace, all scheduled and running."""
    from stratus.twin.apps import load_app
    from stratus.twin.world import World

    app = load_app("hotel-reservation")
    services = app.app_services()
    fixed = len(app.components) - len(services)
    if pods < len(app.components):
        raise SystemExit(f"--pods {pods}: the app has {len(app.components)} components, one pod each at least")
    app.nodes = [f"node-{i}" for i in range(max(len(app.nodes), math.ceil(pods / pods_per_node)))]
    world = World(app)
    spare = pods - fixed
    for i, comp in enumerate(services):
        world.store.get("Deployment", comp, world.namespace)["spec"]["replicas"] = \
            spare // len(services) + (1 if i < spare % len(services) else 0)

    def running() -> int:
        return sum(1 for p in world.store.list("Pod", world.namespace) if p.get("status", {}).get("phase") == "Running")
    t0 = world.clock.now
    while running() < pods:
        if world.clock.now - t0 > ALERT_WAIT_S:
            raise SystemExit(f"only {running()} of {pods} pods running after {ALERT_WAIT_S:.0f} s of twin time")
        world.advance(ALERT_POLL_S)
    world.warm_up()
    return world


def child(pods: int, pods_per_node: int, rounds: int) -> None:
    """(child process) Build the world of ``pods`` pods, inject, diagnose ``rounds`` times; print JSON."""
    from stratus.api import invoke_graph
    from stratus.context import Context
    from stratus.graph import wire
    from stratus.twin import faults
    from stratus.twin.cluster import TwinCluster

    t0 = time.perf_counter()
    world = scaled_world(pods, pods_per_node)
    faults.inject(world, FAULT, FAULT_TARGET)
    start = world.clock.now
    cluster = TwinCluster(world)

    def firing() -> list[dict[str, Any]]:
        return [a for a in cluster.alerts() if a["labels"].get("alertname") not in ("Watchdog", "InfoInhibitor")]
    while not firing():
        if world.clock.now - start > ALERT_WAIT_S:
            raise SystemExit(f"no alert fired within {ALERT_WAIT_S:.0f} s of twin time after {FAULT}")
        world.advance(ALERT_POLL_S)
    alerts = firing()
    build_s = time.perf_counter() - t0
    world_rss = _rss_mb("VmRSS")
    reset = _reset_peak_rss()

    def until_diagnosis(checkpointer: Any) -> Any:
        return wire().compile(checkpointer=checkpointer, interrupt_after=["diagnose"])
    times, result = [], None
    for i in range(rounds + 1):
        t = time.perf_counter()
        result = invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:"), thread_id=f"diag-scale-{i}",
                              build=until_diagnosis)
        times.append(time.perf_counter() - t)
    assert result is not None
    cold, times = times[0], times[1:]
    top = result.hypotheses[0] if result.hypotheses else {}
    print(json.dumps({
        "pods": len(world.store.list("Pod", world.namespace)), "nodes": len(world.store.list("Node")),
        "series": world.tsdb.series_count(), "build_s": round(build_s, 1), "cold_s": round(cold, 3), "times_s": [round(x, 3) for x in times],
        "median_s": round(statistics.median(times), 3), "detected": result.detected,
        "top_hypothesis": {k: top.get(k) for k in ("component", "fault_class")},
        "world_rss_mb": round(world_rss), "diagnosis_peak_rss_mb": round(_rss_mb("VmHWM")) if reset else None}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, nargs="+", default=[20, 200, 2000], help="namespace sizes (pods)")
    ap.add_argument("--rounds", type=int, default=3, help="diagnoses per size (the median is quoted)")
    ap.add_argument("--pods-per-node", type=int, default=30, help="one Node per this many pods")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per size (child process)")
    if sys.argv[1:2] == ["--child"]:
        return child(*(int(a) for a in sys.argv[2:5]))
    args = ap.parse_args()
    rows = []
    for pods in args.pods:
        cmd = [sys.executable, __file__, "--child", str(pods), str(args.pods_per_node), str(args.rounds)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
        if out.returncode:
            raise SystemExit(f"size {pods} failed:\n{out.stderr[-3000:]}")
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    growth = [{"pods": f"{a['pods']} -> {b['pods']}", "time_ratio": round(b["median_s"] / a["median_s"], 2),
               "exponent": round(math.log(b["median_s"] / a["median_s"]) / math.log(b["pods"] / a["pods"]), 2)}
              for a, b in zip(rows, rows[1:])]
    print(json.dumps({"rounds": args.rounds, "median_s": {r["pods"]: r["median_s"] for r in rows},
                      "diagnosis_peak_rss_mb": {r["pods"]: r["diagnosis_peak_rss_mb"] for r in rows},
                      "growth": growth}, indent=2))


if __name__ == "__main__":
    main()
