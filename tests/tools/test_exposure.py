"""A right fix that exposes another fault (the traffic it restores reaches a second broken service) is
kept, while a change that breaks something is still a regression however the rest of the namespace fares.

The call graph: frontend calls user and search; search calls its database; user calls its own.
"""

from __future__ import annotations

from stratus.state import HealthReport
from stratus.tools.health import Scope, exposed, local_progress, tnr_verdict, worsened

CALLS = {"frontend": frozenset({"user", "search", "mongodb-user", "mongodb-search"}),
         "user": frozenset({"mongodb-user"}), "search": frozenset({"mongodb-search"}),
         "mongodb-user": frozenset(), "mongodb-search": frozenset()}
READY = {"frontend": 1, "user": 1, "search": 1, "mongodb-user": 1, "mongodb-search": 1}
EPS, DELTA = 0.005, 0.01

# the user Service's port is wrong (frontend's address no longer matches it) and search is OOM-killed
BEFORE = HealthReport(at=0.0, window_s=60.0, availability=0.6, error_ratio=0.14, latency_norm=0.0, H=0.258,
                      unhealthy=["alert:KubeContainerOOMKilled:search", "errors:frontend",
                                 "latent:EnvAddressPortMismatch:frontend", "pod:search"],
                      developing=["frontend", "search"], ready=READY)
# the Service reverted: frontend reaches user again, so more requests go on to search, which fails more
EXPOSED = HealthReport(at=60.0, window_s=60.0, availability=0.4, error_ratio=0.33, latency_norm=0.0, H=0.0997,
                       unhealthy=["alert:HighRequestErrorRate:frontend", "alert:KubeContainerOOMKilled:search",
                                  "alert:KubePodCrashLooping:search", "errors:frontend", "pod:search"],
                       developing=["frontend"], ready=READY)


def scope(*touched: str) -> Scope:
    return Scope(touched=frozenset(touched), callees=CALLS)


def test_a_right_fix_that_exposes_another_fault_commits() -> None:
    assert worsened(BEFORE, EXPOSED) == {"frontend", "search"}
    assert local_progress(BEFORE, EXPOSED, scope("user")) == {"frontend"}, "frontend's reference resolves"
    assert exposed(BEFORE, EXPOSED, scope("user")) == {"search"}
    verdict, why = tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, scope("user"))
    assert verdict == "commit" and "exposed the untouched fault(s) at search" in why


def test_a_change_that_shows_no_progress_where_it_acts_is_a_regression() -> None:
    """The same fall without frontend's reference resolving: nothing speaks for the change."""
    unresolved = EXPOSED.model_copy(update={"unhealthy": [*EXPOSED.unhealthy, "latent:EnvAddressPortMismatch:frontend"]})
    assert not exposed(BEFORE, unresolved, scope("user"))
    assert tnr_verdict(BEFORE, unresolved, EPS, DELTA, True, scope("user"))[0] == "regression"


def test_a_change_to_the_caller_itself_earns_no_excuse_from_its_own_findings() -> None:
    """Editing frontend's address to the wrong Service port clears frontend's own finding: a change can
    reset its own component's findings, so that is no progress, and frontend got worse."""
    assert not local_progress(BEFORE, EXPOSED, scope("frontend"))
    assert tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, scope("frontend"))[0] == "regression"


def test_a_change_to_what_the_worsened_service_calls_is_a_regression() -> None:
    """search's database changed: search is its caller, so search getting worse is the change's doing."""
    db_progress = BEFORE.model_copy(update={"unhealthy": [*BEFORE.unhealthy, "errors:mongodb-search"]})
    assert not exposed(db_progress, EXPOSED, scope("mongodb-search"))
    assert tnr_verdict(db_progress, EXPOSED, EPS, DELTA, True, scope("mongodb-search"))[0] == "regression"


def test_a_component_healthy_before_that_got_worse_is_not_exposed() -> None:
    """user's Service broken instead of fixed: user's callers fail on it, and user was healthy at BEGIN."""
    broken = EXPOSED.model_copy(update={"unhealthy": [*EXPOSED.unhealthy, "errors:user"]})
    assert not exposed(BEFORE, broken, scope("user"))
    assert tnr_verdict(BEFORE, broken, EPS, DELTA, True, scope("user"))[0] == "regression"
    other = EXPOSED.model_copy(update={"unhealthy": [*EXPOSED.unhealthy, "pod:mongodb-user"]})
    assert tnr_verdict(BEFORE, other, EPS, DELTA, True, scope("user"))[0] == "regression"


def test_a_restart_that_takes_the_only_pod_is_a_regression() -> None:
    """search restarted into a pod that is not Ready: search is touched, so its fall is the change's."""
    down = EXPOSED.model_copy(update={"ready": {**READY, "search": 0}})
    assert not exposed(BEFORE, down, scope("search"))
    assert tnr_verdict(BEFORE, down, EPS, DELTA, True, scope("search"))[0] == "regression"


def test_an_unknown_reach_is_never_excused() -> None:
    assert tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, Scope(touched=None, callees=CALLS))[0] == "regression"
    assert tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, None)[0] == "regression"
