"""Distractor symptoms for scenarios with ``noise: low|high``: real-looking but harmless disturbances.

They change the twin's state as an operator or a flaky node would (a pod evicted and recreated, a
harmless allow-all egress NetworkPolicy, noisy warning logs), so an agent that chases every anomaly pays
for it. The distractor policy allows egress only: an allow-all *ingress* policy on the pods a fault's
deny policy selects would unite with it and let everything through, hiding the fault it sits next to.

Benign changes (``benign:`` in a scenario, see ``bench.benign``) are routine changes made during the
incident; they live in their own module.
"""

from __future__ import annotations

import random
from typing import Any

from stratus.twin.store import rfc3339
from stratus.twin.world import World


def _bystander(world: World, rng: random.Random, avoid: set[str]) -> str:
    comps = [c for c in world.app.app_services() if c not in avoid and c != world.app.entry]
    return rng.choice(comps)


def add_noise(world: World, level: str, seed: int, avoid: set[str] | None = None) -> None:
    if level == "none":
        return
    rng = random.Random(seed * 7919 + 13)
    avoid = avoid or set()
    victim = _bystander(world, rng, avoid)
    chatty = _bystander(world, rng, avoid | {victim})
    start = world.clock.now
    state: dict[str, Any] = {"evicted": False}

    def hook(w: World) -> None:
        if not state["evicted"] and w.clock.now - start >= 30:
            state["evicted"] = True
            for pod in w.store.list("Pod", w.namespace, {w.app.label_key: victim}):
                w.store.event(pod, "Warning", "Evicted", "The node was low on resource: memory. Threshold quantity: "
                              "100Mi, available: 92Mi.", "kubelet")
                w.delete_pod(pod)
        if int(w.clock.now) % 60 == 0:
            for pod in w.store.list("Pod", w.namespace, {w.app.label_key: chatty}):
                w.logs.write(pod, pod["spec"]["containers"][0]["name"], [
                    f"{rfc3339(w.clock.now)} WRN services/{chatty}/server.go:88 > slow request: took 412ms"])

    world.noise.append(hook)
    if level == "high":
        world.store.create({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                            "metadata": {"name": f"allow-{chatty}", "namespace": world.namespace},
                            "spec": {"podSelector": {"matchLabels": {world.app.label_key: chatty}},
                                     "policyTypes": ["Egress"], "egress": [{}]}})
        world.traffic.rps_factor = 1.3
