"""Health H, the unhealthy set U, the noise tolerance eps, and the TNR verdict (DESIGN §6)."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import pytest

from stratus.state import HealthReport
from stratus.tools.health import (
    Scope,
    _Sampled,
    _score,
    _score_from,
    alert_component,
    component_of_pod,
    measure,
    noise_eps,
    tnr_verdict,
)
from stratus.twin.faults import inject

NS = "test-hotel-reservation"


def report(H: float, unhealthy: list[str] | None = None) -> HealthReport:
    return HealthReport(at=0.0, window_s=60.0, availability=1.0, error_ratio=0.0, latency_norm=0.0, H=H,
                        unhealthy=unhealthy or [])


def test_healthy_twin_scores_the_maximum(cluster: Any, ctx: Any) -> None:
    h = measure(cluster, ctx, NS)
    assert h.H == pytest.approx(0.5, abs=0.002)
    assert h.availability == pytest.approx(1.0, abs=0.002) and h.error_ratio == 0.0 and h.latency_norm == 0.0
    assert h.requests_per_s == pytest.approx(100, rel=0.15), "wrk2 offers about 100 rps"
    assert h.unhealthy == [] and h.firing_alerts == []
    assert h.p99_ms is not None and h.p99_ms < ctx.latency_slo_ms


def test_components_of_h_follow_the_formula(world: Any, cluster: Any, ctx: Any) -> None:
    inject(world, "network_delay", "profile")
    world.advance(240)
    h = measure(cluster, ctx, NS)
    assert h.latency_norm > 0 and h.p99_ms > ctx.latency_slo_ms
    assert h.H == pytest.approx(0.5 * h.availability - 0.3 * h.error_ratio - 0.2 * h.latency_norm, abs=1e-3)
    assert -0.5 <= h.H <= 0.5


def test_entry_point_down_means_no_availability(world: Any, cluster: Any, ctx: Any) -> None:
    d = world.store.get("Deployment", "frontend", NS)
    d["spec"]["replicas"] = 0
    world.store.update(d)
    world.advance(120)
    h = measure(cluster, ctx, NS)
    assert h.availability == 0.0 and h.H < 0.05
    assert "errors:frontend" in h.unhealthy or any(u.endswith(":frontend") for u in h.unhealthy)


def test_measure_at_a_past_time_reads_the_past(world: Any, cluster: Any, ctx: Any) -> None:
    t_healthy = world.clock.now
    inject(world, "scale_to_zero", "profile")
    world.advance(180)
    assert measure(cluster, ctx, NS).H < 0.2
    assert measure(cluster, ctx, NS, at=t_healthy).H == pytest.approx(0.5, abs=0.002)


def test_unhealthy_set_names_pods_services_and_alerts(world: Any, cluster: Any, ctx: Any) -> None:
    inject(world, "revoke_db_role", "mongodb-geo")
    world.advance(300)
    h = measure(cluster, ctx, NS)
    assert "pod:geo" in h.unhealthy
    assert "errors:search" in h.unhealthy
    assert any(u.startswith("alert:KubePodCrashLooping:geo") for u in h.unhealthy)
    assert set(h.firing_alerts) <= {u.removeprefix("alert:") for u in h.unhealthy}


def test_noise_eps_on_a_steady_twin_is_the_floor(cluster: Any, ctx: Any) -> None:
    assert noise_eps(cluster, ctx, NS) == ctx.eps_floor


def test_noise_eps_right_after_alerts_fire_stays_small(world: Any, cluster: Any, ctx: Any,
                                                       twin_helpers: Any) -> None:
    """The fault's onset is a level shift in the baseline window, not noise: it must not widen eps."""
    inject(world, "service_target_port", "geo")
    twin_helpers.advance_until_alerts(world)
    eps = noise_eps(cluster, ctx, NS)
    h = measure(cluster, ctx, NS)
    # a harmful change from here (entry point down: H -> about -0.5) must not fit inside the tolerance
    assert h.H - eps > -0.45, f"eps {eps} lets H fall from {h.H} to {h.H - eps} before TNR objects"
    assert eps < 0.05


@pytest.mark.parametrize(("clients", "ranges"), [(None, 5), (("no-such-client",), 6)])
def test_noise_eps_range_samples_equal_instant_scores(world: Any, cluster: Any, ctx: Any, twin_helpers: Any,
                                                     clients: tuple[str, ...] | None, ranges: int) -> None:
    """H sampled from one range query per expression is H scored at each instant, over a fault's onset,
    on both selector paths (the load generator's spans; the entry services' when no client reports)."""
    if clients:
        ctx = dataclasses.replace(ctx, client_services=clients)
    inject(world, "service_target_port", "geo")
    twin_helpers.advance_until_alerts(world)
    end, step, n = cluster.now(), 15.0, 9
    queries: list[str] = []

    class Counting:
        def query_range(self, *args: Any) -> dict[str, Any]:
            queries.append(args[0])
            return cluster.query_range(*args)
    sampled = _Sampled(Counting(), end - 120, step, n)  # type: ignore[arg-type]
    got = [_score_from(partial(sampled.at, i), ctx, NS, ctx.window_s) for i in range(n)]
    want = [_score(cluster, ctx, NS, end - 120 + i * step, ctx.window_s) for i in range(n)]
    assert got == want
    assert len(set(h.H for h in got)) > 1  # the onset is inside the window
    assert len(queries) == len(set(queries)) == ranges


def test_pod_and_alert_components() -> None:
    assert component_of_pod("geo-650ce2ccb7-kg7jq") == "geo"
    assert component_of_pod("mongodb-geo-5b6d8c7f9d-abcde") == "mongodb-geo"
    assert component_of_pod("standalone") == "standalone"
    assert alert_component({"deployment": "rate", "pod": "x-1"}) == "rate"
    assert alert_component({"pod": "user-8ac32a3060-rmv8l"}) == "user"
    assert alert_component({"namespace": NS}) == NS


# --- the verdict (pure) -------------------------------------------------------------------------------
@pytest.mark.parametrize(("before", "after", "open_", "verdict", "why"), [
    (report(0.5), report(0.3, ["errors:frontend"]), True, "regression", "H fell"),
    (report(0.5), report(0.497), False, "commit", "H 0.5000 -> 0.4970"),
    (report(0.2, ["pod:geo"]), report(0.2, ["pod:geo", "pod:rate"]), True, "regression", "newly unhealthy: pod:rate"),
    (report(0.2, ["pod:geo"]), report(0.205, ["pod:geo"]), True, "ineffective", "incident still open"),
    (report(0.2, ["pod:geo"]), report(0.4, ["pod:geo"]), True, "commit", "unhealthy 1 -> 1"),
    (report(0.2, ["pod:geo", "errors:search"]), report(0.2, ["pod:geo"]), True, "commit", "unhealthy 2 -> 1"),
    (report(0.2, ["pod:geo"]), report(0.5), False, "commit", "unhealthy 1 -> 0"),
], ids=["H falls", "within eps", "new component", "no gain while open", "H gain", "fewer unhealthy", "resolved"])
def test_tnr_verdict(before: HealthReport, after: HealthReport, open_: bool, verdict: str, why: str) -> None:
    got, reason = tnr_verdict(before, after, eps=0.005, delta=0.01, incident_open=open_)
    assert got == verdict
    assert why in reason


def test_tnr_verdict_compares_components_not_signals() -> None:
    """DESIGN §6.7: U_after may add no *component*; an already failing one showing a new signal is not new."""
    before = report(0.151, ["errors:frontend", "errors:search", "pod:mongodb-rate", "pod:rate"])
    after = report(0.415, ["alert:HighRequestErrorRate:frontend", "alert:HighRequestErrorRate:search",
                           "alert:KubePodCrashLooping:rate", "errors:frontend", "errors:search"])
    verdict, reason = tnr_verdict(before, after, eps=0.005, delta=0.01, incident_open=True)
    assert verdict == "commit", reason


CALLS = {"frontend": frozenset({"search", "geo", "rate"}), "search": frozenset({"geo", "rate"}),
         "geo": frozenset(), "rate": frozenset()}


def test_tnr_verdict_does_not_blame_what_was_developing_at_begin() -> None:
    """search calls the touched geo, but its alert was already pending at BEGIN."""
    before = report(0.2, ["pod:geo"])
    after = report(0.25, ["alert:HighRequestErrorRate:search"])
    before.ready = after.ready = {"frontend": 1, "search": 1}
    scope = Scope(touched=frozenset({"geo"}), callees=CALLS)
    assert tnr_verdict(before, after, 0.005, 0.01, True, scope)[0] == "regression"
    before.developing = ["search"]
    verdict, reason = tnr_verdict(before, after, 0.005, 0.01, True, scope)
    assert verdict == "commit" and "not attributed to the change: search" in reason


def test_tnr_verdict_blames_only_what_the_change_could_reach() -> None:
    before, after = report(0.2, ["pod:rate"]), report(0.2, ["pod:rate", "errors:geo"])
    assert tnr_verdict(before, after, 0.005, 0.01, True, Scope(touched=frozenset({"rate"}), callees=CALLS))[0] \
        == "ineffective", "geo does not call rate"
    assert tnr_verdict(before, after, 0.005, 0.01, True, Scope(touched=frozenset({"geo"}), callees=CALLS))[0] \
        == "regression", "geo itself was touched"
    assert tnr_verdict(before, after, 0.005, 0.01, True, Scope(touched=None, callees=CALLS))[0] == "regression"


def test_an_alert_clearing_alone_is_not_progress() -> None:
    """A rollout resets KubeDeploymentReplicasMismatch (no rollout in 5 min) without fixing the pods."""
    before = report(0.1, ["alert:KubeDeploymentReplicasMismatch:profile", "latent:BadRollout:profile", "pod:profile"])
    after = report(0.1, ["pod:profile"])
    assert tnr_verdict(before, after, 0.005, 0.01, True)[0] == "ineffective"
    assert tnr_verdict(before, report(0.1, ["alert:KubeDeploymentReplicasMismatch:profile"]), 0.005, 0.01,
                       True)[0] == "commit", "the pods became Ready: that is progress"


def test_a_component_that_is_available_again_is_progress() -> None:
    """Scaling a database back up: its alert and finding clear, and it has a Ready pod again."""
    before = report(0.08, ["alert:DeploymentNotReady:mongodb-rate", "latent:ScaledToZero:mongodb-rate", "pod:rate"])
    after = report(0.08, ["alert:KubePodCrashLooping:rate", "pod:rate"])
    assert tnr_verdict(before, after, 0.005, 0.01, True)[0] == "ineffective", "no Ready pod yet"
    after.ready = {"mongodb-rate": 1}
    assert tnr_verdict(before, after, 0.005, 0.01, True)[0] == "commit"
