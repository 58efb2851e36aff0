"""Every agent is graded at the same simulated moment: ``HORIZON_S`` after detection.

Before, ``stratus`` was graded after its own recovery watch (up to 360 s) and ``oneshot`` as soon as it
returned, so ``oneshot`` lost scenarios whose clients were still in restart back-off, with the very same
actions as ``stratus``. The grade now waits for the clock to reach the horizon (advancing the twin as
needed), and an agent still working then is graded as the world stands at the horizon.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stratus.bench.runner import HORIZON_S, HorizonCluster, run_scenario
from stratus.twin.cluster import TwinCluster

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.mark.parametrize("name", ["hotel-mongodb-rate-scale-to-zero", "hotel-mongodb-rate-pod-failure"])
def test_same_actions_same_grade_whatever_the_loop(name: str) -> None:
    rows = {a: run_scenario(SCENARIOS / f"{name}.yaml", agent=a) for a in ("stratus", "oneshot", "retry")}
    assert rows["oneshot"]["actions"] == rows["stratus"]["actions"], "the baselines act as stratus does here"
    for agent, row in rows.items():
        assert row["horizon_s"] == HORIZON_S
        assert row["finished_by_horizon"] and row["agent_done_s"] <= HORIZON_S
        assert row["mitigated"], (agent, row["oracle"])
    assert rows["oneshot"]["agent_done_s"] < rows["stratus"]["agent_done_s"], "oneshot returned earlier"


def test_grade_is_taken_at_the_horizon_even_mid_wait() -> None:
    twin = TwinCluster()
    start = twin.now()
    seen: list[float] = []

    def grade() -> tuple[bool, list[str]]:
        seen.append(twin.now())
        return True, []

    h = HorizonCluster(twin, start + 100.0, grade)
    h.wait(60.0)
    assert seen == []
    h.wait(300.0)  # an agent still waiting when the horizon passes
    assert seen == [start + 100.0]
    assert twin.now() == start + 360.0
    assert h.grade_at_horizon() == (True, []) and seen == [start + 100.0], "graded once"


def test_an_agent_that_finishes_early_is_graded_at_the_horizon() -> None:
    twin = TwinCluster()
    start = twin.now()
    seen: list[Any] = []
    h = HorizonCluster(twin, start + 90.0, lambda: seen.append(twin.now()) or (False, ["x"]))
    h.wait(15.0)
    assert h.grade_at_horizon() == (False, ["x"])
    assert seen == [start + 90.0] and twin.now() == start + 90.0
