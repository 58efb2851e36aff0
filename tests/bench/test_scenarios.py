"""Scenario files (DESIGN §8, a contract): shipped files load, bad fields are named, the runner's JSON
object has the contract keys, and ``stratus run-scenario`` exits 2 on an invalid file."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stratus.bench.runner import run_scenario
from stratus.bench.scenarios import Scenario, ScenarioError, load_dir, load_scenario, parse_scenario
from stratus.twin.faults import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
CONTRACT_KEYS = {"scenario", "agent", "policy", "detected", "localized", "localization_correct",
                 "analysis_correct", "mitigated", "tnr_violations", "health_initial", "health_final",
                 "transactions", "rollbacks", "actions", "sim_time_to_mitigate_s", "wall_s", "llm_calls",
                 "llm_tokens"}
VALID: dict[str, Any] = {
    "id": "t-geo-revoke", "app": "hotel-reservation", "seed": 7,
    "faults": [{"type": "revoke_db_role", "target": "mongodb-geo", "params": {"db": "geo-db"}}],
    "noise": "low",
    "expect": {"detected": True, "root_cause": ["mongodb-geo"], "system_level": "Application",
               "fault_type": "Authentication Issue"},
}
HAS_CLI = importlib.util.find_spec("stratus.cli") is not None


def with_(path: str, value: Any) -> dict[str, Any]:
    """VALID with one field replaced; path like 'faults.0.type'."""
    data = copy.deepcopy(VALID)
    node: Any = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    node[keys[-1]] = value
    return data


def test_shipped_scenarios_load_with_unique_ids_matching_file_names() -> None:
    loaded = load_dir(SCENARIOS)
    assert len(loaded) >= 40
    ids = [sc.id for _, sc in loaded]
    assert len(ids) == len(set(ids))
    for path, sc in loaded:
        assert path.stem == sc.id
        assert all(f.type in REGISTRY for f in sc.faults)
        assert sc.expect.detected == bool(sc.faults)
        for f in sc.faults:
            assert f.target in sc.expect.root_cause, f"{sc.id}: the injected target is the root cause"


def test_valid_scenario_parses_with_defaults() -> None:
    sc = parse_scenario(copy.deepcopy(VALID))
    assert isinstance(sc, Scenario) and sc.faults[0].params == {"db": "geo-db"}
    minimal = parse_scenario({"id": "m", "app": "hotel-reservation"})
    assert (minimal.seed, minimal.noise, minimal.faults, minimal.namespace) == (0, "none", [], None)
    assert parse_scenario(with_("expect.root_cause", "mongodb-geo")).expect.root_cause == ["mongodb-geo"]


@pytest.mark.parametrize(("data", "field", "hint"), [
    ({**VALID, "timeout": 30}, "timeout", "unknown field"),
    (with_("faults.0.type", "revoke_all_the_things"), "faults.0.type", "unknown fault type"),
    (with_("faults.0.target", "mongodb-nope"), "faults[0].target", "not a component of hotel-reservation"),
    (with_("faults.0.target", "geo"), "faults[0].target", "needs a database"),
    ({**VALID, "faults": [{"type": "crashing_image", "target": "mongodb-geo"}]}, "faults[0].target",
     "needs an application service"),
    ({**VALID, "faults": [{"type": "scale_to_zero"}]}, "faults[0].target", "required"),
    (with_("faults.0.params", {"database": "geo-db"}), "faults[0].params", "database"),
    ({**VALID, "faults": [{"type": "scale_to_zero", "target": "geo", "when": "now"}]}, "faults.0.when",
     "unknown field"),
    (with_("app", "bookinfo"), "app", "hotel-reservation"),
    (with_("noise", "extreme"), "noise", "none"),
    (with_("seed", "seven"), "seed", ""),
    ({k: v for k, v in VALID.items() if k != "id"}, "id", "required"),
    (with_("expect", {"detected": True, "culprit": "geo"}), "expect.culprit", "unknown field"),
    (with_("faults", {"type": "scale_to_zero"}), "faults", "list"),
], ids=["unknown top-level key", "bad fault type", "target not in app", "target of wrong kind (database)",
        "target of wrong kind (app)", "missing target", "bad params", "unknown fault key", "bad app",
        "bad noise", "bad seed", "missing id", "unknown expect key", "faults not a list"])
def test_bad_field_is_named(data: dict[str, Any], field: str, hint: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data, "bad.yaml")
    msg = str(err.value)
    assert msg.startswith("bad.yaml:")
    assert field in msg, msg
    assert hint in msg, msg


@pytest.mark.parametrize("doc", ["- id: x\n  app: hotel-reservation\n", "just a string\n", "42\n", ""],
                         ids=["list", "string", "number", "empty"])
def test_non_mapping_yaml_is_rejected(doc: str, tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(doc)
    with pytest.raises(ScenarioError, match="must be a YAML mapping"):
        load_scenario(f)


def test_broken_yaml_missing_file_and_empty_dir(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("id: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match="no scenario files"):
        load_dir(empty)


def test_noop_control_runs_clean() -> None:
    out = run_scenario(parse_scenario({"id": "t-noop", "app": "hotel-reservation", "seed": 1,
                                       "expect": {"detected": False}}))
    assert CONTRACT_KEYS <= set(out)
    assert out["detected"] is False and out["detection_correct"] is True
    assert out["transactions"] == 0 and out["actions"] == [] and out["mitigated"] is True
    assert out["localized"] == [] and out["localization_correct"] is True


def test_run_scenario_grades_a_fault() -> None:
    out = run_scenario(SCENARIOS / "hotel-profile-scale-to-zero.yaml")
    assert CONTRACT_KEYS <= set(out)
    assert out["scenario"] == "hotel-profile-scale-to-zero" and out["agent"] == "stratus"
    assert out["detected"] and out["mitigated"] and out["localization_correct"] and out["analysis_correct"]
    assert out["tnr_violations"] == 0 and out["health_final"] >= out["health_initial"]
    assert out["sim_time_to_mitigate_s"] is not None and out["sim_time_to_mitigate_s"] > 0
    json.dumps(out)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from stratus.cli import app; app()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)


@pytest.mark.skipif(not HAS_CLI, reason="stratus.cli is not written yet")
@pytest.mark.parametrize(("data", "field"), [
    ({**VALID, "timeout": 30}, "timeout"),
    (with_("faults.0.target", "mongodb-nope"), "faults[0].target"),
    (["not", "a", "mapping"], "mapping"),
])
def test_run_scenario_cli_exits_2_naming_the_field(data: Any, field: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(data))
    out = _cli("run-scenario", str(f), "--json")
    assert out.returncode == 2, out.stdout + out.stderr
    assert field in out.stdout + out.stderr


@pytest.mark.skipif(not HAS_CLI, reason="stratus.cli is not written yet")
def test_run_scenario_cli_prints_the_contract_object() -> None:
    out = _cli("run-scenario", str(SCENARIOS / "hotel-geo-network-policy-block.yaml"), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert CONTRACT_KEYS <= set(result)
    assert result["scenario"] == "hotel-geo-network-policy-block" and result["mitigated"] is True
