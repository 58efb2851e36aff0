"""The scenario generators: deterministic, compound incidents built by rule on all three apps, and a
hold-out suite kept apart from the development suite (no shared single-fault pair, no shared seed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from stratus.bench.scenarios import load_dir
from stratus.twin.faults import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
APPS = {"hotel-reservation", "social-network", "astronomy-shop"}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_scenarios_ops", ROOT / "bench" / "make_scenarios_ops.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_writes_the_same_files_twice_and_the_committed_ones(tmp_path: Path) -> None:
    texts = []
    for run in ("a", "b"):
        gen = _generator()  # a fresh module: no cache carried from the first run
        (tmp_path / run).mkdir()
        gen.main(tmp_path / run / "dev", tmp_path / run / "holdout")
        texts.append({p.relative_to(tmp_path / run).as_posix(): p.read_text()
                      for p in sorted((tmp_path / run).rglob("*.yaml"))})
    assert texts[0] == texts[1]
    for name, text in texts[0].items():
        folder, file = name.split("/")
        committed = ROOT / ("scenarios" if folder == "dev" else "scenarios-holdout") / file
        assert committed.read_text() == text, f"{committed} differs from what the generator writes"
    assert len([n for n in texts[0] if n.startswith("holdout/")]) == len(list((ROOT / "scenarios-holdout").glob("*.yaml")))


def test_dev_and_holdout_share_no_single_fault_pair_and_no_seed() -> None:
    dev, held = load_dir(ROOT / "scenarios"), load_dir(ROOT / "scenarios-holdout")
    def singles(suite: list) -> set[tuple[str, str, str | None]]:
        return {(sc.app, sc.faults[0].type, sc.faults[0].target) for _, sc in suite if len(sc.faults) == 1}
    assert singles(held) and not singles(dev) & singles(held)
    assert not {sc.seed for _, sc in dev} & {sc.seed for _, sc in held}
    assert len({sc.seed for _, sc in held}) == len(held)
    assert 50 <= len(held) <= 70


def test_compound_incidents_span_all_apps_with_distinct_families_and_targets() -> None:
    for folder, least in (("scenarios", 60), ("scenarios-holdout", 30)):
        compound = [sc for _, sc in load_dir(ROOT / folder) if len(sc.faults) >= 2]
        assert len(compound) >= least, folder
        assert {sc.app for sc in compound} == APPS
        assert {sc.app for sc in compound if len(sc.faults) == 3} == APPS
        assert any(sc.benign for sc in compound) and any(sc.noise != "none" for sc in compound)
        for sc in compound:
            targets = [f.target for f in sc.faults]
            assert len(set(targets)) == len(targets), sc.id
            if not sc.id.startswith(("hotel-multi", "holdout-multi")):  # the generated ones, not the hand-written
                assert len({REGISTRY[f.type].family for f in sc.faults}) == len(sc.faults), sc.id


def test_new_fault_types_have_single_fault_scenarios_on_the_other_apps() -> None:
    dev = load_dir(ROOT / "scenarios")
    new = {n for n, spec in REGISTRY.items() if spec.new}
    for app in ("social-network", "astronomy-shop"):
        covered = {sc.faults[0].type for _, sc in dev if sc.app == app and len(sc.faults) == 1} & new
        assert len(covered) >= 14, (app, sorted(new - covered))
