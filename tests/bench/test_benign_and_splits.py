"""Benign changes move the grader's baseline (undoing one is harm); the restart baseline restarts and
nothing else; the report splits by family, by known versus new type and by app; the two suites stay apart."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

from stratus.bench.benign import ROUTINE_TAG, settings_name
from stratus.bench.oracles import grade
from stratus.bench.report import summarize
from stratus.bench.report_splits import family_of, novelty_of
from stratus.bench.runner import prepare, run_scenario
from stratus.bench.scenarios import load_dir, parse_scenario
from stratus.context import Context

ROOT = Path(__file__).resolve().parents[2]


def test_routine_changes_are_not_harm_but_undoing_them_is() -> None:
    sc = parse_scenario({"id": "b", "app": "hotel-reservation", "seed": 8, "benign": ["rollout", "scale", "config"],
                         "faults": [{"type": "service_selector_typo", "target": "geo"}]})
    world, cluster, records, base, _ = prepare(sc)
    world.advance(200)
    d = world.store.list("Deployment", world.namespace)
    rolled = [x for x in d if x["spec"]["template"]["spec"]["containers"][0]["image"].endswith(ROUTINE_TAG)]
    scaled = [x for x in d if x["spec"]["replicas"] == 2]
    edited = [c for c in world.store.list("ConfigMap", world.namespace) if c["metadata"]["name"].endswith("-settings")]
    assert len(rolled) == len(scaled) == len(edited) == 1 and edited[0]["data"]["LOG_LEVEL"] == "debug"
    assert {rolled[0]["metadata"]["name"], scaled[0]["metadata"]["name"]} & {"geo", "frontend"} == set()
    svc = copy.deepcopy(world.store.get("Service", "geo", world.namespace))
    svc["spec"]["selector"] = records[0]["original"]["selector"]
    world.store.update(svc)
    world.advance(300)
    ok, notes = grade(world, cluster, records, base, Context(), changed=True)
    assert ok, notes
    back = copy.deepcopy(rolled[0])
    back["spec"]["template"]["spec"]["containers"][0]["image"] = "yinfangchen/hotelreservation:latest"
    world.store.update(back)
    cm = copy.deepcopy(world.store.get("ConfigMap", settings_name(edited[0]["metadata"]["name"].removesuffix(
        "-settings")), world.namespace))
    cm["data"]["LOG_LEVEL"] = "info"
    world.store.update(cm)
    world.advance(120)
    ok, notes = grade(world, cluster, records, base, Context(), changed=True)
    harm = [n for n in notes if n.startswith("collateral:")]
    assert not ok and len(harm) == 2 and any("image" in n for n in harm) and any("LOG_LEVEL" in n for n in harm)


def test_the_restart_baseline_only_restarts_and_a_restart_fixes_no_new_fault() -> None:
    row = run_scenario(ROOT / "scenarios" / "hotel-ops-geo-service-selector-typo.yaml", agent="restart")
    assert row["actions"] and all(" rollout restart deployment/" in a for a in row["actions"])
    assert row["transactions"] == 1 and not row["mitigated"]
    assert row["families"] == ["wiring"] and row["new_fault_type"] is True


def _row(agent: str, faults: list[str], families: list[str], new: bool, **kw: Any) -> dict[str, Any]:
    return {"agent": agent, "scenario": "s", "app": "hotel-reservation", "faults": faults, "families": families,
            "new_fault_type": new, "horizon_s": 900, **kw}


def test_the_splits_count_per_family_novelty_and_app() -> None:
    rows = [_row("stratus", ["node_taint@geo"], ["scheduling"], True, mitigated=True, lucky_fix=True),
            _row("stratus", ["scale_to_zero@rate"], ["dependencies"], False, mitigated=True),
            _row("stratus", ["node_taint@geo", "scale_to_zero@rate"], ["dependencies", "scheduling"], True,
                 outcome="escalated", escalated=True),
            _row("restart", ["node_taint@geo"], ["scheduling"], True, harm=["collateral: x"], outcome="resolved",
                 false_resolution=True),
            _row("restart", ["noop@None"], [], False, mitigated=True)]
    s = summarize(rows)
    assert [family_of(r) for r in rows] == ["scheduling", "dependencies", "multi-fault", "scheduling", "control"]
    assert [novelty_of(r) for r in rows] == ["new", "known", "new", "new", "control"]
    assert s["by_family"]["scheduling"]["stratus"] == {"n": 1, "mitigated": 1, "harm_left": 0,
                                                       "false_resolutions": 0, "escalations": 0, "lucky_fixes": 1}
    assert s["by_family"]["scheduling"]["restart"]["false_resolutions"] == 1
    assert s["by_novelty"]["new"]["stratus"]["n"] == 2 and s["by_novelty"]["new"]["stratus"]["escalations"] == 1
    assert s["by_app"]["hotel-reservation"]["restart"]["harm_left"] == 1
    assert s["agents"]["stratus"]["lucky_fixes"] == 1 and s["agents"]["stratus"]["escalations"] == 1


def test_the_hold_out_suite_is_generated_and_kept_apart(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_scenarios_ops", ROOT / "bench" / "make_scenarios_ops.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "dev", tmp_path / "holdout")
    written = {p.name: p.read_text() for p in (tmp_path / "holdout").glob("*.yaml")}
    assert written == {p.name: p.read_text() for p in (ROOT / "scenarios-holdout").glob("*.yaml")}
    dev, held = load_dir(ROOT / "scenarios"), load_dir(ROOT / "scenarios-holdout")
    pairs = {(sc.app, f.type, f.target) for _, sc in dev for f in sc.faults}
    assert all((sc.app, f.type, f.target) not in pairs for _, sc in held for f in sc.faults)
    assert not {sc.seed for _, sc in dev} & {sc.seed for _, sc in held}
    assert any(len(sc.faults) == 3 for _, sc in held) and any(sc.benign for _, sc in held)
