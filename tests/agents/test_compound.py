"""The loop on compound incidents: a committed fix that leaves the incident open is followed by the next
one, judged on what it could affect; the attempt budget bounds failures, not progress; "resolved" waits
until health has stayed clean; and a hypothesis that keeps failing rests until something commits."""

from __future__ import annotations

from typing import Any

import pytest

from stratus.agents import mitigation
from stratus.agents.common import budget_spent
from stratus.agents.mitigation import worn_out
from stratus.context import Context
from stratus.graph import after_validate
from stratus.state import HealthReport
from stratus.tools.health import Scope, tnr_verdict

# frontend calls rate and recommendation; rate calls its database
CALLS = {"frontend": frozenset({"rate", "recommendation", "mongodb-rate"}), "rate": frozenset({"mongodb-rate"}),
         "recommendation": frozenset(), "mongodb-rate": frozenset()}


def report(h: float, unhealthy: list[str], ready: dict[str, int] | None = None) -> HealthReport:
    return HealthReport(at=0.0, window_s=60.0, availability=2 * h, error_ratio=0.0, latency_norm=0.0, H=h,
                        unhealthy=unhealthy, ready=ready or {})


def test_a_fix_is_not_blamed_for_a_second_fault_surfacing_out_of_its_reach() -> None:
    """rate's ConfigMap repaired (its pod Ready again) while recommendation's liveness probe starts
    failing: H falls, but only because of a component the change cannot reach."""
    before = report(0.38, ["pod:rate", "errors:frontend"], {"frontend": 1, "recommendation": 1})
    after = report(0.28, ["errors:frontend", "pod:recommendation", "alert:KubePodCrashLooping:recommendation"],
                   {"frontend": 1, "rate": 1})
    verdict, why = tnr_verdict(before, after, 0.005, 0.01, True, Scope(touched=frozenset({"rate"}), callees=CALLS))
    assert verdict == "commit" and "not attributed to the change: recommendation" in why
    # without a scope (a Node, an unknown kind) the fall is the change's
    assert tnr_verdict(before, after, 0.005, 0.01, True, None)[0] == "regression"


def test_silencing_a_component_is_no_excuse_for_a_fall_of_h() -> None:
    """frontend scaled to zero: its errors stop because it has no pods, and what it called starves."""
    before = report(0.3, ["errors:frontend", "pod:rate"], {"frontend": 1})
    starved = report(0.1, ["pod:rate", "alert:NoRequestsReceived:recommendation"], {})
    assert tnr_verdict(before, starved, 0.005, 0.01, True,
                       Scope(touched=frozenset({"frontend"}), callees=CALLS))[0] == "regression"


def _tx(status: str, fault_class: str = "crash_loop", component: str = "geo") -> dict[str, Any]:
    return {"id": f"t-{status}", "status": status, "hypothesis": {"fault_class": fault_class, "component": component}}


def _state(statuses: list[str], open_: bool = True) -> dict[str, Any]:
    return {"transactions": [_tx(s) for s in statuses], "attempts": len(statuses), "remaining_steps": 40,
            "health_latest": {"unhealthy": ["pod:geo"] if open_ else []}}


class _Runtime:
    def __init__(self, ctx: Context) -> None:
        self.context = ctx


def test_committed_progress_does_not_use_up_the_attempt_budget() -> None:
    ctx = Context(db=":memory:", max_attempts=2, max_transactions=6)
    five_commits = _state(["committed"] * 5)
    assert budget_spent(five_commits, ctx) is None
    assert after_validate(five_commits, _Runtime(ctx)) == "diagnose"  # type: ignore[arg-type]
    failing = _state(["committed", "undone", "refused"])
    assert "attempt limit reached (2/2" in (budget_spent(failing, ctx) or "")
    capped = _state(["committed"] * 6)
    assert "Context.max_transactions" in (budget_spent(capped, ctx) or "")
    assert after_validate({**capped, "transactions": capped["transactions"]}, _Runtime(ctx)) == "escalate"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_transactions"):
        Context(db=":memory:", max_transactions=0)


def test_a_hypothesis_that_failed_twice_rests_until_a_change_commits() -> None:
    state = {"transactions": [_tx("undone", "bad_rollout", "profile"), _tx("undone", "bad_rollout", "profile"),
                              _tx("undone", "wrong_binary", "profile")]}
    assert worn_out(state) == {("bad_rollout", "profile")}  # type: ignore[arg-type]
    state["transactions"].append(_tx("committed", "missing_object", "memcached-rate"))
    assert worn_out(state) == set()  # type: ignore[arg-type]


class _Pods:
    """A cluster whose one pod restarts once, ``after_s`` seconds into watching."""

    def __init__(self, after_s: float) -> None:
        self.t, self.after_s = 0.0, after_s

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def list(self, kind: str, namespace: str | None = None, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        restarts = 3 if self.t >= self.after_s else 2
        return [{"metadata": {"name": "rate-6d9f8b7c5d-x2k4q"},
                 "status": {"containerStatuses": [{"restartCount": restarts}]}}]


def test_resolution_waits_until_health_stays_clean_and_nothing_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash-looping pod is Ready between crashes: a clean instant is not a resolved incident."""
    monkeypatch.setattr(mitigation, "assess", lambda *_a, **_k: report(0.5, []))
    ctx = Context(db=":memory:", confirm_s=90.0, alert_poll_s=30.0)
    crashing = _Pods(after_s=60.0)
    seen = mitigation._confirm_resolved(crashing, ctx, "ns", report(0.5, []))
    assert seen.unhealthy == ["restarts:rate"] and crashing.t == 60.0
    steady = _Pods(after_s=1e9)
    assert mitigation._confirm_resolved(steady, ctx, "ns", report(0.5, [])).unhealthy == [] and steady.t == 90.0


def test_waiting_for_alerts_to_clear_is_only_for_components_that_had_a_symptom() -> None:
    """email's crash-loop alert outlives its fixed pods; fraud-detection, scaled to zero, never had a pod
    to be unready, so its alert does not clear by waiting and is not worth watching for."""
    lingering = report(0.5, ["alert:KubePodCrashLooping:email", "alert:DeploymentNotReady:fraud-detection"])
    lingering.firing_alerts = ["KubePodCrashLooping", "DeploymentNotReady"]
    state: Any = {"health_detect": {"unhealthy": ["pod:email", "alert:DeploymentNotReady:fraud-detection"]},
                  "transactions": []}
    lagging = mitigation._lagging(state, report(0.4, ["alert:DeploymentNotReady:fraud-detection"]))
    assert lagging == {"email"}
    assert mitigation._quiet_but_alerting(lingering, lagging)
    persistent = report(0.5, ["alert:DeploymentNotReady:fraud-detection"])
    persistent.firing_alerts = ["DeploymentNotReady"]
    assert not mitigation._quiet_but_alerting(persistent, lagging)
    assert mitigation._quiet_but_alerting(persistent)  # without a history every alert is worth waiting for
