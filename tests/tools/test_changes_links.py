"""How the changes analyzer ties a change to the symptoms (the ``link`` fact plans read).

A scale-down that leaves a Service without endpoints broke something; a routine rollout whose new pods
were admitted under a LimitRange's too-small default did not (the LimitRange did), so it is only next to
the symptoms and no plan reverts it.
"""

from __future__ import annotations

from typing import Any

from stratus.bench import benign
from stratus.policies.rules import RulesPolicy
from stratus.tools.analyzers import run_all
from stratus.tools.journal import ChangeJournal
from tests.conftest import act
from tests.conftest import watch_journal as watch

NS = "test-hotel-reservation"


def links(cluster: Any, journal: ChangeJournal) -> dict[tuple[str, str], set[str]]:
    """``(kind, name) -> links`` of every changes finding."""
    _view, findings = run_all(cluster, NS, journal=journal)
    out: dict[tuple[str, str], set[str]] = {}
    for f in findings:
        if f.source == "changes":
            out.setdefault((f.data["kind"], f.data["name"]), set()).add(f.data["link"])
    return out


def test_a_scale_down_that_leaves_a_service_without_endpoints_broke_it(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    act(cluster, "scale", "Deployment", "geo", replicas=0)
    watch(world, cluster, journal, 120)
    assert links(cluster, journal)[("Deployment", "geo")] == {"broken"}
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    reverts = [p for h in hyps if h.fault_class == "recent_change" for p in policy.plans(cluster, NS, h, view)
               if any((a.verb, a.kind, a.name) == ("apply", "Deployment", "geo") for a in p.actions)]
    assert reverts and reverts[0].actions[0].params["manifest"]["spec"]["replicas"] == 1


def test_a_rollout_whose_pods_die_under_a_limit_range_default_is_only_near(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    act(cluster, "create", "LimitRange", "mem-defaults", manifest={
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "mem-defaults", "namespace": NS},
        "spec": {"limits": [{"type": "Container", "default": {"memory": "16Mi"}}]}})
    watch(world, cluster, journal, 30)
    benign._apply(world, benign.BenignChange("rollout", "geo"))  # new pods, admitted under the default
    watch(world, cluster, journal, 120)
    found = links(cluster, journal)
    assert found[("Deployment", "geo")] == {"near"}, found
    assert "broken" in found[("LimitRange", "mem-defaults")], found
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    touched = [(h.fault_class, a.verb) for h in hyps for p in policy.plans(cluster, NS, h, view) for a in p.actions
               if (a.kind, a.name) == ("Deployment", "geo") and a.verb in ("apply", "rollout_undo", "set_image")]
    assert not touched, touched
