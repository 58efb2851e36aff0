"""Speed and memory benchmarks (run by hand, never as tests).

    uv run python bench/perf.py [--runs 3] [--hours 24] [--skip-soak]

Measures, on this machine:
  * `stratus demo` wall time (separate process, median of --runs);
  * `stratus run-scenario FILE --json` wall time and peak RSS (separate processes, median), and the
    in-process `wall_s` the command reports (scenario work without interpreter start-up);
  * the twin's memory over --hours simulated hours (RSS and the TSDB's / logs' / events' sizes every
    simulated 2 hours), to show telemetry is kept in bounded windows.
Prints a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ["hotel-mongodb-geo-revoke-db-role", "hotel-geo-service-target-port", "hotel-rate-memory-limit-oom",
             "hotel-user-network-policy-block", "hotel-noop-none"]


def _stratus() -> list[str]:
    exe = Path(sys.executable).with_name("stratus")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "stratus.cli"]


WRAP = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(p.returncode)")


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of this one command (via a small wrapper process), stdout."""
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", WRAP, *cmd], check=False, capture_output=True, text=True, env=env, cwd=ROOT,
                       timeout=300)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    peak_kb = next(int(line.split()[1]) for line in reversed(p.stderr.splitlines()) if line.startswith("MAXRSS"))
    return wall, peak_kb / 1024.0, p.stdout


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def soak(hours: float) -> dict:
    from stratus.twin.world import World

    w = World(seed=1)
    out = []
    step = 2 * 3600.0
    for i in range(int(hours * 3600 // step) + 1):
        if i:
            w.advance(step)
        gc.collect()
        out.append({"sim_h": round(i * step / 3600, 1), "rss_mb": round(rss_mb(), 1),
                    "tsdb_series": w.tsdb.series_count(), "tsdb_samples": w.tsdb.sample_count(),
                    "log_lines": sum(len(b) for b in w.logs.lines.values()) +
                    sum(len(b) for b in w.logs.previous.values()),
                    "events": len(w.store._events), "traces": len(w.traffic.traces)})
        print("soak", out[-1], flush=True)
    return {"points": out, "rss_growth_mb_after_2h": round(out[-1]["rss_mb"] - out[1]["rss_mb"], 1)
            if len(out) > 1 else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--skip-soak", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="stratus-perf-")
    env = {**os.environ, "STRATUS_DB": str(Path(tmp) / "perf.db"), "PYTHONDONTWRITEBYTECODE": "1"}
    summary: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "platform": platform.platform()}}
    demo = []
    for _ in range(args.runs):
        wall, peak, _out = _run(_stratus() + ["demo"], env)
        demo.append(wall)
        print(f"demo: {wall:.2f}s wall", flush=True)
    summary["demo_wall_s_median"] = round(statistics.median(demo), 2)
    per = {}
    for sid in SCENARIOS:
        walls, inproc, peaks = [], [], []
        for _ in range(args.runs):
            wall, peak, out = _run(_stratus() + ["run-scenario", f"scenarios/{sid}.yaml", "--json"], env)
            r = json.loads(out.strip().splitlines()[-1])
            walls.append(wall)
            inproc.append(r["wall_s"])
            peaks.append(peak)
            print(f"{sid}: {wall:.2f}s process wall, {r['wall_s']:.2f}s in-process, mitigated={r['mitigated']}",
                  flush=True)
        per[sid] = {"process_wall_s_median": round(statistics.median(walls), 2),
                    "inprocess_wall_s_median": round(statistics.median(inproc), 2),
                    "peak_rss_mb_max": round(max(peaks), 1)}
    summary["scenarios"] = per
    summary["scenario_process_wall_s_median"] = round(statistics.median(
        v["process_wall_s_median"] for v in per.values()), 2)
    summary["scenario_inprocess_wall_s_median"] = round(statistics.median(
        v["inprocess_wall_s_median"] for v in per.values()), 2)
    summary["scenario_peak_rss_mb_max"] = max(v["peak_rss_mb_max"] for v in per.values())
    if not args.skip_soak:
        summary["soak"] = soak(args.hours)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
