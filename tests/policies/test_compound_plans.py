"""Plans in compound incidents: attempts are not spent twice on one fix, and no plan touches a bystander.

With two or three faults at once the policy gets five attempts for all of them, so the same commands
are not run again under another component's hypothesis; and the plans never "fix" what works: a
routine rollout, a scale-up or a ConfigMap edit next to a broken component is not reverted, a workload
that never set the memory limit it was killed under gets no limit written into it, a selector is not
"repaired" to a far-off workload's labels, and a client is not pointed at a Service that moved.

Every mistake is made through the Cluster protocol after a healthy warm-up the journal watched.
"""

from __future__ import annotations

from typing import Any

import pytest

from stratus.bench import benign
from stratus.policies.generic import _bystander, _closest_selector
from stratus.policies.rules import RulesPolicy
from stratus.state import Hypothesis
from stratus.tools.analyzers import View
from stratus.tools.journal import ChangeJournal
from tests.conftest import act, drain
from tests.conftest import watch_journal as watch

NS = "test-hotel-reservation"
LIMIT_RANGE = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "mem-defaults", "namespace": NS},
               "spec": {"limits": [{"type": "Container", "default": {"memory": "16Mi"},
                                    "defaultRequest": {"memory": "16Mi"}}]}}


def all_plans(cluster: Any, journal: ChangeJournal | None) -> list[tuple[str, str, list[str]]]:
    """(class, component, commands) of every plan, best hypothesis first."""
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    return [(h.fault_class, h.component, p.commands) for h in hyps for p in policy.plans(cluster, NS, h, view)]


def heads(commands: list[str]) -> list[str]:
    return [c.split("\n")[0] for c in commands]


def limit_range_on(world: Any, cluster: Any, *components: str) -> ChangeJournal:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    act(cluster, "create", "LimitRange", "mem-defaults", manifest=LIMIT_RANGE)
    for comp in components:
        drain(cluster, comp)
    watch(world, cluster, journal, 120)
    return journal


def test_commands_tried_under_one_hypothesis_are_not_run_again_under_another(world: Any, cluster: Any) -> None:
    journal = limit_range_on(world, cluster, "geo", "rate")
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    lr = [h for h in hyps if h.fault_class == "limit_range_default"]
    assert {h.component for h in lr} >= {"geo", "rate"}, [(h.fault_class, h.component) for h in hyps[:6]]
    first = policy.next_plan(cluster, NS, hyps, {}, view)
    assert first is not None and first.hypothesis.fault_class == "limit_range_default"
    again = policy.next_plan(cluster, NS, hyps, {first.key: first.commands}, view)
    assert again is None or again.commands != first.commands, again.key if again else None


def test_a_workload_killed_under_a_limit_it_never_set_gets_no_limit_written(world: Any, cluster: Any) -> None:
    journal = limit_range_on(world, cluster, "geo")
    plans = all_plans(cluster, journal)
    assert any(cls == "limit_range_default" and comp == "geo" for cls, comp, _c in plans)
    assert not [c for _cls, comp, cmds in plans for c in cmds if comp == "geo" and "set resources" in c]


def test_a_workload_with_its_own_too_small_limit_still_gets_room(world: Any, cluster: Any) -> None:
    act(cluster, "set_resources", "Deployment", "rate", limits={"memory": "16Mi"}, container="hotel-reserv-rate")
    world.advance(180)
    plans = all_plans(cluster, None)
    assert any(cls == "oom_limit" and comp == "rate" and any("set resources deployment/rate" in c for c in cmds)
               for cls, comp, cmds in plans), [(cls, comp) for cls, comp, _c in plans]


def benign_next_to_a_fault(world: Any, cluster: Any, change: str) -> tuple[ChangeJournal, str]:
    """Service geo is deleted (a fault) and, a moment later, search (its client) gets the routine change
    the benchmark's noise makes (a new tag of its image, one more replica, a log-level edit).

    Returns the journal and the object the routine change touched, as ``kind/name``."""
    journal = ChangeJournal([NS])
    if change == "config":
        benign._stage_settings(world, "search")
    watch(world, cluster, journal, 120)
    cluster.world.store.delete("Service", "geo", NS)  # kubectl delete service/geo
    watch(world, cluster, journal, 30)
    section = benign._apply(world, benign.BenignChange(change, "search"))
    watch(world, cluster, journal, 120)
    return journal, ("configmap/" + benign.settings_name("search")) if section == "ConfigMap" else "deployment/search"


@pytest.mark.parametrize("change", ["rollout", "scale", "config"])
def test_a_routine_change_next_to_a_fault_is_left_alone(change: str, world: Any, cluster: Any) -> None:
    journal, touched = benign_next_to_a_fault(world, cluster, change)
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    plans = [p for h in hyps for p in policy.plans(cluster, NS, h, view)]
    assert any(a.verb == "create" and (a.kind, a.name) == ("Service", "geo") for p in plans for a in p.actions), \
        "the deleted Service is not re-created"
    reverts = [p.key for p in plans for a in p.actions
               if a.verb in ("apply", "rollout_undo", "scale") and f"{a.kind}/{a.name}".lower() == touched]
    assert not reverts, f"the routine {change} of {touched} is undone by {reverts}"


def test_a_selector_is_not_repaired_to_a_far_off_workload(world: Any, cluster: Any) -> None:
    view = View.read(cluster, NS)
    assert _closest_selector(view, {"io.kompose.service": "geo-v2"}, "geo") == {"io.kompose.service": "geo"}
    assert _closest_selector(view, {"io.kompose.service": "accounting"}, "geo") is None


def test_a_client_is_not_pointed_at_a_service_whose_port_moved(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    act(cluster, "patch", "Service", "rate", type="json",
        patch=[{"op": "replace", "path": "/spec/ports/0/port", "value": 8085},
               {"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8085}])
    watch(world, cluster, journal, 60)
    plans = all_plans(cluster, journal)
    assert heads(plans[0][2]) == [f"kubectl apply -n {NS} -f -"]
    assert not [(cls, comp) for cls, comp, cmds in plans if any(c.startswith("kubectl set env") for c in cmds)]


def near(kind: str, field: str, before: str, after: str, link: str = "near") -> Hypothesis:
    fact = {"kind": kind, "name": "x", "op": "update", "link": link,
            "fields": [{"field": field, "path": field, "before": before, "after": after}]}
    return Hypothesis(component="x", fault_class="recent_change", confidence=0.5, data={"facts": [fact]})


@pytest.mark.parametrize(("hyp", "routine"), [
    (near("Deployment", "image", "app:1.0", "app:1.1"), True),
    (near("Deployment", "replicas", "1", "2"), True),
    (near("ConfigMap", "data", '"info"', '"debug"'), True),
    (near("Deployment", "replicas", "1", "0"), False),
    (near("Deployment", "command", "null", '["other"]'), False),
    (near("Deployment", "image", "app:1.0", "app:1.1", link="broken"), False),
], ids=["image-tag", "scale-up", "config-data", "scale-to-zero", "command", "image-that-broke-its-pods"])
def test_only_routine_changes_next_to_the_symptoms_are_bystanders(hyp: Hypothesis, routine: bool) -> None:
    assert _bystander(hyp, hyp.data["facts"][0]["kind"], "x") is routine


def test_a_workload_with_a_second_mistake_gets_its_healthy_template_not_a_restart(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    d = cluster.get("Deployment", "geo", NS)
    probe = {"tcpSocket": {"port": 9999}, "periodSeconds": 10, "failureThreshold": 3}
    act(cluster, "patch", "Deployment", "geo", type="json", patch=[
        {"op": "add", "path": "/spec/template/spec/containers/0/livenessProbe", "value": probe}])
    act(cluster, "create", "LimitRange", "mem-defaults", manifest=LIMIT_RANGE)
    benign._apply(world, benign.BenignChange("rollout", "rate"))  # a routine rollout, also under the default
    watch(world, cluster, journal, 120)
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    plan = next(p for h in hyps if h.fault_class == "limit_range_default" for p in policy.plans(cluster, NS, h, view))
    by_name = {a.name: a for a in plan.actions}
    assert by_name["geo"].verb == "apply", plan.commands
    assert "livenessProbe" not in by_name["geo"].params["manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert by_name["geo"].params["manifest"]["spec"]["replicas"] == d["spec"]["replicas"]
    assert by_name["rate"].verb == "rollout_restart", plan.commands
