"""Generic plans from the evidence alone (no change journal): what the rules policy proposes for
operator mistakes no runbook names, read through the Cluster protocol after the mistake."""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action
from stratus.policies.generic import quantity
from stratus.policies.rules import RulesPolicy
from stratus.tools.kubectl import render

NS = "test-hotel-reservation"


def mistake(world: Any, cluster: Any, verb: str, kind: str, name: str, **params: Any) -> None:
    assert cluster.apply(Action(verb=verb, kind=kind, name=name, namespace=NS, params=params)).ok
    world.advance(120)


def plans_for(cluster: Any, fault_class: str, component: str) -> list[str]:
    policy = RulesPolicy()
    _findings, hyps, view = policy.diagnose(cluster, NS)
    hyp = next(h for h in hyps if (h.fault_class, h.component) == (fault_class, component))
    return [" && ".join(render(a).split("\n")[0] for a in p.actions) for p in policy.plans(cluster, NS, hyp, view)]


def test_a_selector_no_pod_matches_is_pointed_at_the_closest_workload(world: Any, cluster: Any) -> None:
    mistake(world, cluster, "patch", "Service", "geo", type="merge",
            patch={"spec": {"selector": {"io.kompose.service": "geo-v2"}}})
    _f, hyps, _v = RulesPolicy().diagnose(cluster, NS)
    assert (hyps[0].fault_class, hyps[0].component) == ("broken_reference", "geo")
    assert plans_for(cluster, "broken_reference", "geo")[0] == (
        "kubectl patch service/geo -n test-hotel-reservation --type=merge -p "
        "'{\"spec\":{\"selector\":{\"io.kompose.service\":\"geo\"}}}'")


def test_an_address_naming_no_service_is_pointed_at_the_closest_one(world: Any, cluster: Any) -> None:
    mistake(world, cluster, "set_env", "Deployment", "geo", env={"MONGO_ADDR": "mongodb-gep:27017"})
    plans = plans_for(cluster, "broken_reference", "geo")
    assert "kubectl set env deployment/geo -n test-hotel-reservation MONGO_ADDR=mongodb-geo:27017" in plans


def test_a_request_no_node_fits_goes_back_to_the_workloads_history(world: Any, cluster: Any) -> None:
    mistake(world, cluster, "set_resources", "Deployment", "geo", requests={"cpu": "64"})
    _f, hyps, _v = RulesPolicy().diagnose(cluster, NS)
    assert (hyps[0].fault_class, hyps[0].component) == ("insufficient_resources", "geo")
    assert plans_for(cluster, "insufficient_resources", "geo")[0] == (
        "kubectl set resources deployment/geo -n test-hotel-reservation -c hotel-reserv-geo --requests=cpu=100m")


def test_quantities_compare_as_numbers() -> None:
    assert sorted(["1", "250m", "64", "1500m"], key=quantity) == ["250m", "1", "1500m", "64"]
    assert quantity("1Gi") == 2**30 and quantity("bogus") == float("inf")
