"""The shipped rule files are real Prometheus rule files, and the twin's evaluator agrees with Prometheus.

``promtool check rules`` must accept every ``stratus/twin/data/rules-*.yaml``. For the evaluator, the
input series of ``alert_scenario.yaml`` are fed to the twin's TSDB and :class:`RuleEvaluator` step by
step; the firing alerts it reports at every step (labels and expanded annotations) become the expected
alerts of a ``promtool test rules`` file over the same series, so promtool passes only if Prometheus'
own rule engine fires the same alerts at the same times. Samples sit 1 ms off the evaluation grid
(``sample_interval``): Debian's Prometheus 2.x counts a sample exactly at a range window's start, while
Prometheus 3 and the twin use left-open windows; everywhere else the two must agree.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prom_server import require_programs

from stratus.twin.prom.rules import DATA_DIR, RuleEvaluator, load_rules, parse_duration
from stratus.twin.tsdb import TSDB

SCENARIO = Path(__file__).with_name("alert_scenario.yaml")
RULE_FILES = sorted(DATA_DIR.glob("rules-*.yaml"))
BENCHMARK_RULES = DATA_DIR / "rules-benchmark.yaml"

Step = float | str | None  # a value, "stale", or None (no sample)


def expand(values: str) -> list[Step]:
    """Segments of alert_scenario.yaml (``V*N``, ``+D*N``, ``_*N``, ``stale``) to one entry per step."""
    out: list[Step] = []
    last = 0.0
    for seg in values.split():
        if seg == "stale":
            out.append("stale")
            continue
        head, _, count = seg.partition("*")
        n = int(count or 1)
        for _ in range(n):
            if head == "_":
                out.append(None)
            else:
                last = last + float(head) if head.startswith("+") else float(head)
                out.append(last)
    return out


def series_text(labels: dict[str, str]) -> str:
    """``name{a="b", ...}``, the series notation of promtool's input_series."""
    def q(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    rest = ", ".join(f"{k}={q(v)}" for k, v in sorted(labels.items()) if k != "__name__")
    return f"{labels['__name__']}{{{rest}}}"


def step_text(v: Step) -> str:
    if v is None:
        return "_"
    if v == "stale":
        return "stale"
    assert isinstance(v, float)
    return repr(int(v)) if v.is_integer() else repr(v)


def run_twin(scenario: dict[str, Any], rule_file: Path) -> tuple[list[dict[str, list[dict]]], list[set[str]]]:
    """Per step: firing alerts by name (promtool's exp_alerts entries), and the names pending then."""
    interval = parse_duration(scenario["interval"])
    sample_interval = parse_duration(scenario["sample_interval"])
    series = [(dict(s["labels"]), expand(s["values"])) for s in scenario["series"]]
    db = TSDB(retention_s=3600)
    evaluator = RuleEvaluator(load_rules(rule_file))
    firing_per_step, pending_per_step = [], []
    for k in range(int(scenario["steps"])):
        t, ts = k * interval, k * sample_interval
        for labels, steps in series:
            v = steps[k] if k < len(steps) else None
            name = labels["__name__"]
            rest = {a: b for a, b in labels.items() if a != "__name__"}
            if v == "stale":
                s = db.get(name, rest)
                if s is not None:
                    s.mark_stale(ts)
            elif v is not None:
                db.add(name, rest, float(v), ts)
        evaluator.evaluate(db, t)
        firing: dict[str, list[dict]] = {r.name: [] for r in evaluator.rules}
        for a in evaluator.firing():
            labels = {k2: v2 for k2, v2 in a.labels.items() if k2 != "alertname"}
            firing[a.rule.name].append({"exp_labels": labels, "exp_annotations": dict(a.annotations)})
        firing_per_step.append(firing)
        pending_per_step.append({a.rule.name for a in evaluator.alerts(("pending",))})
    return firing_per_step, pending_per_step


def promtool_test_file(scenario: dict[str, Any], rule_file: Path, firing_per_step: list[dict]) -> dict:
    interval = parse_duration(scenario["interval"])
    return {
        "rule_files": [str(rule_file)],
        "evaluation_interval": scenario["interval"],
        "tests": [{
            "interval": scenario["sample_interval"],
            "input_series": [{"series": series_text(s["labels"]),
                              "values": " ".join(step_text(v) for v in expand(s["values"]))}
                             for s in scenario["series"]],
            "alert_rule_test": [{"eval_time": f"{int(k * interval)}s", "alertname": name, "exp_alerts": exp}
                                for k, firing in enumerate(firing_per_step) for name, exp in firing.items()],
        }],
    }


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_shipped_rule_files_pass_promtool_check(rule_file: Path):
    promtool = require_programs("promtool")["promtool"]
    r = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(load_rules(rule_file))} rules found" in r.stdout


def test_twin_evaluator_agrees_with_promtool_test_rules(tmp_path: Path):
    promtool = require_programs("promtool")["promtool"]
    scenario = yaml.safe_load(SCENARIO.read_text())
    firing_per_step, pending_per_step = run_twin(scenario, BENCHMARK_RULES)
    # the scenario must exercise every rule both ways, and hold some in `for:` before they fire
    for rule in load_rules(BENCHMARK_RULES):
        fired = [k for k, f in enumerate(firing_per_step) if f[rule.name]]
        assert fired, f"{rule.name} never fires in the scenario"
        assert len(fired) < len(firing_per_step), f"{rule.name} fires at every step"
        if rule.for_s > 0:
            assert rule.name in pending_per_step[fired[0] - 1], f"{rule.name} fired without a pending phase"
    test_file = tmp_path / "twin_rules_test.yaml"
    test_file.write_text(yaml.safe_dump(promtool_test_file(scenario, BENCHMARK_RULES, firing_per_step),
                                        sort_keys=False))
    r = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    assert "SUCCESS" in r.stdout
