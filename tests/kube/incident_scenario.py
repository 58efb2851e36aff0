"""The full incident's scenario, the same on both backends: the network-policy-block gate case
(``scenarios/hotel-gate-search-network-policy-block-100.yaml``) without the bench noise, plus one
bystander NetworkPolicy already in the namespace before the fault.

The bystander, ``allow-search``, selects search's pods but only for egress (allow-all), so it isolates
nothing and the fault's deny policy blocks frontend -> search. Diagnosis lists every policy selecting
search and the rules policy tries them in order: deleting ``allow-search`` changes nothing (the wrong fix,
judged ineffective by TNR and undone), deleting ``deny-search`` lets traffic through (the right fix,
committed). The gate case's own noise puts an allow-all *ingress* policy there instead, which masks the
deny entirely (Kubernetes unions the allows of every policy selecting a pod): no alert fires, on the twin
or on a real cluster, so it cannot open an incident from alerts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stratus.bench.oracles import baseline
from stratus.bench.runner import ALERT_POLL_S, ALERT_WAIT_MAX_S, run_scenario
from stratus.bench.scenarios import Scenario, load_scenario
from stratus.twin.cluster import TwinCluster
from stratus.twin.faults import inject
from stratus.twin.world import World

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "hotel-gate-search-network-policy-block-100.yaml"
BYSTANDER = "allow-search"


def scenario() -> Scenario:
    """The gate case with its noise turned off."""
    return load_scenario(SCENARIO).model_copy(update={"noise": "none"})


def bystander_policy(namespace: str, label_key: str, target: str) -> dict[str, Any]:
    """A NetworkPolicy selecting ``target``'s pods that allows all their egress and restricts no ingress."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": BYSTANDER, "namespace": namespace, "labels": {"team": "search"}},
            "spec": {"podSelector": {"matchLabels": {label_key: target}},
                     "policyTypes": ["Egress"], "egress": [{}]}}


def run_on_twin(sc: Scenario) -> dict[str, Any]:
    """The scenario on the in-process twin with the rules policy: bench's ``prepare`` with the bystander
    created after warm-up, then ``run_scenario``'s graded row."""
    world = World(sc.app, seed=sc.seed, namespace=sc.namespace)
    cluster = TwinCluster(world)
    world.warm_up(300.0)
    [fault] = sc.faults
    world.store.create(bystander_policy(world.namespace, world.app.label_key, fault.target or ""))
    base = baseline(world)
    injected_at = world.clock.now
    records = [inject(world, fault.type, fault.target, fault.params)]
    while world.clock.now - injected_at < ALERT_WAIT_MAX_S and not [
            a for a in world.firing() if a["labels"].get("alertname") != "Watchdog"]:
        world.advance(ALERT_POLL_S)
    return run_scenario(sc, policy="rules", prepared=(world, cluster, records, base, injected_at))
