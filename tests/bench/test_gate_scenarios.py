"""The committed suite exercises the TNR gate, and the baselines differ from STRATUS only through it.

The gate scenarios are written by ``bench/make_scenarios.py`` like the rest of the suite (the committed
files are exactly what the script writes): a fault plus high distractor noise placed where the fault is.
On them the first plausible plan is harmful: STRATUS's gate undoes it and the next plan fixes the fault
with no harm left, while the ungated baselines commit it and are graded by what it left behind.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from stratus.bench.runner import run_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def test_the_committed_suite_is_what_the_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_scenarios", ROOT / "bench" / "make_scenarios.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    written = {p.name: p.read_text() for p in tmp_path.glob("*.yaml")}
    committed = {p.name: p.read_text() for p in SCENARIOS.glob("*.yaml")}
    assert written == committed
    gate = [n for n in written if n.startswith("hotel-gate-")]
    assert len({n.split("-")[2] for n in gate}) >= 3 and len(gate) >= 5, "several targets and seeds"


def test_the_gate_changes_the_outcome_where_the_first_plan_is_harmful() -> None:
    name = next(p for p in sorted(SCENARIOS.glob("hotel-gate-*-network-policy-block-*.yaml")))
    rows = {a: run_scenario(name, agent=a) for a in ("stratus", "oneshot", "retry")}
    first = rows["stratus"]["actions"][0]
    assert all(r["actions"][0] == first for r in rows.values()), "every loop tries the same first plan"
    s = rows["stratus"]
    assert s["rollbacks"] == 1 and s["mitigated"] and s["harm"] == [] and not s["false_resolution"]
    for agent in ("oneshot", "retry"):
        r = rows[agent]
        assert r["rollbacks"] == 0 and not r["mitigated"], agent
        assert r["harm"] and all(n.startswith("collateral:") for n in r["harm"]), agent
        assert r["false_resolution"] and r["outcome"] == "resolved", agent
