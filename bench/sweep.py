"""Generalisation sweep: every fault on every component it applies to, beyond the committed suite.

    uv run python bench/sweep.py [--seed 303] [--noise none|low|high] [--out /tmp/sweep.jsonl]
    uv run python bench/sweep.py --pairs 30 [--seed 5]     # two simultaneous faults per scenario

Builds each scenario in memory (the same format and runner as `stratus run-scenario`), runs the
`stratus` agent with the rules policy, and prints the failures and a summary. The policy never sees
which fault was injected; the sweep shows how it does on targets and seeds it was not written against.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from stratus.bench.runner import run_scenario
from stratus.bench.scenarios import parse_scenario
from stratus.twin.apps import load_app
from stratus.twin.faults import REGISTRY


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=303)
    ap.add_argument("--noise", default="none", choices=("none", "low", "high"))
    ap.add_argument("--app", default="hotel-reservation")
    ap.add_argument("--out", default=None)
    ap.add_argument("--pairs", type=int, default=0, help="run N random pairs of faults instead")
    args = ap.parse_args()
    app = load_app(args.app)
    rows = []
    t0 = time.perf_counter()
    out = open(args.out, "w") if args.out else None
    cases = []
    for name, spec in REGISTRY.items():
        if name == "noop":
            continue
        for comp in app.components:
            kind = app.kind_of(comp)
            if (spec.targets == "app" and kind != "app") or (spec.targets == "database" and kind != "mongodb"):
                continue
            cases.append((name, comp))
    scenarios = [[c] for c in cases]
    if args.pairs:
        rng = random.Random(args.seed)
        scenarios = []
        while len(scenarios) < args.pairs:
            a, b = rng.sample(cases, 2)
            if a[1] != b[1]:
                scenarios.append([a, b])
    for i, faults in enumerate(scenarios):
        names = "+".join(f"{c}-{n}" for n, c in faults)
        first = REGISTRY[faults[0][0]]
        sc = parse_scenario({"id": names, "app": args.app, "seed": args.seed + i * (1 if args.pairs else 0),
                             "noise": args.noise, "faults": [{"type": n, "target": c} for n, c in faults],
                             "expect": {"root_cause": [c for _, c in faults],
                                        "system_level": first.system_level if len(faults) == 1 else None,
                                        "fault_type": first.fault_type if len(faults) == 1 else None}})
        r = run_scenario(sc)
        rows.append(r)
        if out:
            out.write(json.dumps(r) + "\n")
        if not (r["mitigated"] and r["localization_correct"]) or r["tnr_violations"]:
            print(f"FAIL {r['scenario']}: mitigated={r['mitigated']} localized={r['localized']} "
                  f"oracle={r['oracle']}", flush=True)
    n = len(rows)
    summary = {"seed": args.seed, "noise": args.noise, "runs": n,
               "mitigated": sum(r["mitigated"] for r in rows),
               "localized": sum(r["localization_correct"] for r in rows),
               "analysis": sum(bool(r["analysis_correct"]) for r in rows),
               "tnr_violations": sum(r["tnr_violations"] for r in rows),
               "rollbacks": sum(r["rollbacks"] for r in rows),
               "wall_s": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
