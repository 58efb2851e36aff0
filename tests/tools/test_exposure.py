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
    assert exposed(BEFORE, EXPOSED, scope("user")) == ({"search"}, {"frontend"})
    verdict, why = tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, scope("user"))
    assert verdict == "commit" and "exposed the untouched fault(s) at search" in why


def test_a_change_that_shows_no_progress_where_it_acts_is_a_regression() -> None:
    """The same fall without frontend's reference resolving: nothing speaks for the change."""
    unresolved = EXPOSED.model_copy(update={"unhealthy": [*EXPOSED.unhealthy, "latent:EnvAddressPortMismatch:frontend"]})
    assert not any(exposed(BEFORE, unresolved, scope("user")))
    assert tnr_verdict(BEFORE, unresolved, EPS, DELTA, True, scope("user"))[0] == "regression"


def test_a_change_to_the_caller_itself_earns_no_excuse_from_its_own_findings() -> None:
    """Editing frontend's address to the wrong Service port clears frontend's own finding: a change can
    reset its own component's findings, so that is no progress, and frontend got worse."""
    assert not local_progress(BEFORE, EXPOSED, scope("frontend"))
    assert tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, scope("frontend"))[0] == "regression"


def test_a_change_to_what_the_worsened_service_calls_is_a_regression() -> None:
    """search's database changed: search is its caller, so search getting worse is the change's doing."""
    db_progress = BEFORE.model_copy(update={"unhealthy": [*BEFORE.unhealthy, "errors:mongodb-search"]})
    assert not any(exposed(db_progress, EXPOSED, scope("mongodb-search")))
    assert tnr_verdict(db_progress, EXPOSED, EPS, DELTA, True, scope("mongodb-search"))[0] == "regression"


def test_a_component_healthy_before_that_got_worse_is_not_exposed() -> None:
    """user's Service broken instead of fixed: user's callers fail on it, and user was healthy at BEGIN."""
    broken = EXPOSED.model_copy(update={"unhealthy": [*EXPOSED.unhealthy, "errors:user"]})
    assert not any(exposed(BEFORE, broken, scope("user")))
    assert tnr_verdict(BEFORE, broken, EPS, DELTA, True, scope("user"))[0] == "regression"
    other = EXPOSED.model_copy(update={"unhealthy": [*EXPOSED.unhealthy, "pod:mongodb-user"]})
    assert tnr_verdict(BEFORE, other, EPS, DELTA, True, scope("user"))[0] == "regression"


def test_a_restart_that_takes_the_only_pod_is_a_regression() -> None:
    """search restarted into a pod that is not Ready: search is touched, so its fall is the change's."""
    down = EXPOSED.model_copy(update={"ready": {**READY, "search": 0}})
    assert not any(exposed(BEFORE, down, scope("search")))
    assert tnr_verdict(BEFORE, down, EPS, DELTA, True, scope("search"))[0] == "regression"


def test_an_unknown_reach_is_never_excused() -> None:
    assert tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, Scope(touched=None, callees=CALLS))[0] == "regression"
    assert tnr_verdict(BEFORE, EXPOSED, EPS, DELTA, True, None)[0] == "regression"


# a post's path: nginx calls compose; compose calls unique-id and home; home calls graph
POSTS = {"nginx": frozenset({"compose", "unique-id", "home", "graph"}), "compose": frozenset({"unique-id", "home", "graph"}),
         "home": frozenset({"graph"}), "unique-id": frozenset(), "graph": frozenset()}
# compose and graph are OOM-killed by a LimitRange default; graph's liveness probe is wrong too
POSTS_BEFORE = HealthReport(at=0.0, window_s=60.0, availability=0.9, error_ratio=0.05, latency_norm=0.0, H=0.435,
                            unhealthy=["errors:nginx", "pod:compose", "pod:graph"], developing=["nginx"],
                            ready={"nginx": 1, "home": 1, "unique-id": 1})
# the LimitRange deleted and both restarted: compose serves again, so posts reach home, which waits on graph
POSTS_AFTER = HealthReport(at=60.0, window_s=60.0, availability=0.88, error_ratio=0.08, latency_norm=0.0, H=0.42,
                           unhealthy=["alert:KubePodCrashLooping:graph", "errors:compose", "errors:home", "errors:nginx",
                                      "pod:graph"], developing=["home", "nginx"],
                           ready={"nginx": 1, "compose": 1, "home": 1, "unique-id": 1})
RESTARTED = Scope(touched=frozenset({"compose", "graph", "unique-id"}), callees=POSTS)


def test_a_fix_exposing_a_fault_it_also_restarted_commits() -> None:
    """graph was failing on its own and lost no Ready pod; home, healthy before, now errs on graph."""
    assert exposed(POSTS_BEFORE, POSTS_AFTER, RESTARTED) == ({"graph"}, {"home"})
    verdict, why = tnr_verdict(POSTS_BEFORE, POSTS_AFTER, EPS, DELTA, True, RESTARTED)
    assert verdict == "commit", why


def test_a_restart_that_takes_a_ready_pod_from_a_failing_component_is_a_regression() -> None:
    lost = POSTS_BEFORE.model_copy(update={"ready": {**POSTS_BEFORE.ready, "graph": 1}})
    assert not any(exposed(lost, POSTS_AFTER, RESTARTED))
    assert tnr_verdict(lost, POSTS_AFTER, EPS, DELTA, True, RESTARTED)[0] == "regression"


def test_a_starved_callee_is_not_excused() -> None:
    """home newly silent rather than erring: a change to its caller may have cut its traffic."""
    starved = POSTS_AFTER.model_copy(update={
        "unhealthy": ["alert:KubePodCrashLooping:graph", "alert:NoRequestsReceived:home", "errors:nginx", "pod:graph"],
        "developing": ["nginx"]})
    assert not any(exposed(POSTS_BEFORE, starved, RESTARTED))
    assert tnr_verdict(POSTS_BEFORE, starved, EPS, DELTA, True, RESTARTED)[0] == "regression"


def test_a_newcomer_with_no_pod_before_or_after_is_not_blamed() -> None:
    """search's Deployment was deleted: fixing frontend's user address sends traffic towards it, and an
    alert about search appears. Nothing of search runs for the change to have broken; a touched one is
    still blamed, and so is an untouched one with pods."""
    before = BEFORE.model_copy(update={"unhealthy": ["errors:frontend"], "developing": [],
                                       "ready": {k: v for k, v in READY.items() if k != "search"}})
    after = before.model_copy(update={"H": 0.3, "unhealthy": ["alert:NoRequestsReceived:search", "errors:frontend"]})
    verdict, why = tnr_verdict(before, after, EPS, DELTA, True, scope("user", "frontend"))
    assert verdict == "commit" and "not attributed to the change: search" in why
    assert tnr_verdict(before, after, EPS, DELTA, True, scope("search"))[0] == "regression"
    assert tnr_verdict(before, after, EPS, DELTA, True, scope("mongodb-search"))[0] == "commit"
    with_pods = after.model_copy(update={"ready": READY})
    assert tnr_verdict(before, with_pods, EPS, DELTA, True, scope("mongodb-search"))[0] == "regression"


def test_pods_a_change_only_let_start_answer_for_themselves_while_h_holds() -> None:
    """A taint removed lets search's new pod start, and it is OOM-killed by its own limit: not the
    change's doing while H holds; a fall of H is still judged, and a change to search itself is blamed."""
    before = BEFORE.model_copy(update={"unhealthy": ["pod:frontend"], "developing": []})
    after = before.model_copy(update={"H": 0.3, "unhealthy": ["alert:KubeContainerOOMKilled:search", "pod:frontend",
                                                              "pod:search"]})
    untainted = Scope(touched=frozenset({"search", "frontend"}), callees=CALLS, admitted=frozenset({"search"}))
    verdict, why = tnr_verdict(before, after, EPS, DELTA, True, untainted)
    assert verdict == "commit" and "not attributed to the change: search" in why
    fell = after.model_copy(update={"H": 0.1})
    assert tnr_verdict(before, fell, EPS, DELTA, True, untainted)[0] == "regression"
    assert tnr_verdict(before, after, EPS, DELTA, True, scope("search", "frontend"))[0] == "regression"
