"""Benchmark aggregation: a run that errored (in the agent or the grader) is a failure, never a run
missing from the denominators."""

from __future__ import annotations

from typing import Any

from stratus.bench.report import render_markdown, summarize


def _row(scenario: str, fault: str | None, mitigated: bool, **extra: Any) -> dict[str, Any]:
    return {"scenario": scenario, "agent": "stratus", "policy": "rules", "faults": [fault] if fault else [],
            "mitigated": mitigated, "detection_correct": True, **extra}


def test_errored_runs_count_as_failures() -> None:
    rows = [_row("a", "scale_to_zero@rate", True), _row("b", "scale_to_zero@geo", True),
            {"scenario": "c", "agent": "stratus", "policy": "rules", "faults": ["scale_to_zero@user"],
             "mitigated": False, "error": "RuntimeError('boom')"},
            _row("d", None, True),
            {"scenario": "e", "agent": "stratus", "policy": "rules", "faults": [], "mitigated": False,
             "error": "RuntimeError('boom')"}]
    summary = summarize(rows)
    s = summary["agents"]["stratus"]
    assert (s["n"], s["n_fault"], s["n_control"], s["errors"]) == (5, 3, 2, 2)
    assert s["mitigation_rate"] == round(2 / 3, 4)
    assert s["control_correct"] == 0.5
    assert s["detection_accuracy"] == 0.6
    assert summary["by_fault_type"]["scale_to_zero"]["stratus"] == {"n": 3, "mitigated": 2,
                                                                    "rate": round(2 / 3, 4), "rollbacks": 0}
    assert "A run that errored counts as a failure." in render_markdown(summary)


def test_harm_left_and_false_resolutions_are_counted_per_agent() -> None:
    rows = [_row("a", "scale_to_zero@rate", True, outcome="resolved", horizon_s=1800.0, harm=[]),
            _row("b", "scale_to_zero@geo", False, outcome="resolved", false_resolution=True, horizon_s=1800.0,
                 harm=["collateral: Node kind-worker changed at unschedulable: False -> True"]),
            _row("c", "scale_to_zero@user", False, outcome="escalated", horizon_s=1800.0, harm=[])]
    summary = summarize(rows)
    s = summary["agents"]["stratus"]
    assert (s["harm_left"], s["false_resolutions"], s["unfinished_at_horizon"]) == (1, 1, 0)
    assert summary["horizon_s"] == [1800.0]
    md = render_markdown(summary)
    assert "harm left" in md and "false resolutions" in md and "graded 1800 simulated seconds after detection" in md


def test_unfixed_runs_are_counted_with_those_escalated_naming_a_faulty_component() -> None:
    rows = [_row("a", "scale_to_zero@rate", True, outcome="resolved", localization_correct=True),
            _row("b", "scale_to_zero@geo", False, outcome="escalated", localization_correct=True),
            _row("c", "scale_to_zero@user", False, outcome="escalated", localization_correct=False),
            _row("d", "scale_to_zero@search", False, outcome="resolved", localization_correct=True),
            {**_row("e", "scale_to_zero@rate", True, outcome="resolved"), "agent": "oneshot"},
            {**_row("f", "scale_to_zero@geo", False, outcome="resolved"), "agent": "oneshot"}]
    summary = summarize(rows)
    s = summary["agents"]["stratus"]
    assert (s["unfixed"], s["unfixed_escalated_correctly"]) == (3, 1)
    md = render_markdown(summary)
    assert "unfixed, escalated naming a faulty component" in md
    assert "Mitigated relative to oneshot: stratus 0.50x." in md
