"""Operator mistakes no runbook names, fixed by generic plans from the evidence and the change journal.

Each test warms the twin up while a ``ChangeJournal`` watches (as a deployed STRATUS would), makes a
benign change elsewhere (a scaling and a harmless env edit, settled healthy), then makes one mistake
through the Cluster protocol, as a person with kubectl would. The graph must leave the namespace
healthy, commit a fix that puts the broken object right, keep TNR, and leave the benign changes alone.
A last test gives the graph a wrong generic plan first (reverting the benign change): TNR undoes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from stratus.api import invoke_graph
from stratus.cluster.actions import Action
from stratus.context import Context
from stratus.policies.generic import revert
from stratus.policies.rules import RulesPolicy
from stratus.state import Hypothesis, Plan, TriedPlans
from stratus.tools.analyzers import View
from stratus.tools.journal import ChangeJournal
from stratus.tools.kubectl import render

NS = "test-hotel-reservation"
NODES = ("kind-worker", "kind-worker2", "kind-worker3")
GEO = {"io.kompose.service": "geo"}


def watch(world: Any, cluster: Any, journal: ChangeJournal, seconds: float, poll: float = 15.0) -> None:
    end = world.clock.now + seconds
    while world.clock.now < end:
        world.advance(poll)
        journal.observe(cluster)


def act(cluster: Any, verb: str, kind: str, name: str, namespace: str | None = NS, **params: Any) -> None:
    res = cluster.apply(Action(verb=verb, kind=kind, name=name, namespace=namespace, params=params))
    assert res.ok, res.message


def geo_pod(cluster: Any) -> str:
    return str(cluster.list("Pod", NS, selector=GEO)[0]["metadata"]["name"])


def geo_config(cluster: Any) -> None:
    """A legitimate, healthy change made during warm-up: geo reads LOG_LEVEL from a ConfigMap."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "geo-config", "namespace": NS},
          "data": {"LOG_LEVEL": "info"}}
    act(cluster, "create", "ConfigMap", "geo-config", manifest=cm)
    act(cluster, "patch", "Deployment", "geo", type="json", patch=[{
        "op": "add", "path": "/spec/template/spec/containers/0/env/-",
        "value": {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "geo-config", "key": "LOG_LEVEL"}}}}])


def _container(cluster: Any, name: str) -> dict[str, Any]:
    return dict(cluster.get("Deployment", name, NS)["spec"]["template"]["spec"]["containers"][0])


def _env(cluster: Any, name: str) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _container(cluster, name).get("env") or []}


Mistake = Callable[[Any], None]
Check = Callable[[Any], bool]
MISTAKES: dict[str, tuple[Mistake, Check]] = {
    "service selector": (
        lambda c: act(c, "patch", "Service", "geo", type="merge", patch={"spec": {"selector": {"io.kompose.service":
                                                                                              "geo-v2"}}}),
        lambda c: c.get("Service", "geo", NS)["spec"]["selector"] == GEO),
    "service targetPort": (
        lambda c: act(c, "patch", "Service", "geo", type="json",
                      patch=[{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 9090}]),
        lambda c: c.get("Service", "geo", NS)["spec"]["ports"][0]["targetPort"] == 8083),
    "deleted Service": (
        lambda c: act(c, "delete", "Service", "geo"),
        lambda c: c.get("Service", "geo", NS)["spec"]["selector"] == GEO),
    "env names a wrong host": (
        lambda c: act(c, "set_env", "Deployment", "geo", env={"MONGO_ADDR": "mongodb-gep:27017"}),
        lambda c: _env(c, "geo")["MONGO_ADDR"] == "mongodb-geo:27017"),
    "CPU request no node fits": (
        lambda c: act(c, "set_resources", "Deployment", "geo", requests={"cpu": "64"}),
        lambda c: _container(c, "geo")["resources"]["requests"]["cpu"] == "100m"),
    "image with a bad tag": (
        lambda c: act(c, "set_image", "Deployment", "geo",
                      images={"hotel-reserv-geo": "yinfangchen/hotelreservation:nope"}),
        lambda c: _container(c, "geo")["image"] == "yinfangchen/hotelreservation:latest"),
    "every node tainted": (
        lambda c: [act(c, "taint", "Node", n, None, add=[{"key": "maint", "value": "x", "effect": "NoSchedule"}])
                   for n in NODES] and act(c, "delete", "Pod", geo_pod(c)),
        lambda c: not any(t.get("key") == "maint" for n in NODES for t in c.get("Node", n)["spec"].get("taints") or [])),
    "every node cordoned": (
        lambda c: [act(c, "cordon", "Node", n, None) for n in NODES] and act(c, "delete", "Pod", geo_pod(c)),
        lambda c: not any(c.get("Node", n)["spec"].get("unschedulable") for n in NODES)),
    "deleted ConfigMap": (
        lambda c: act(c, "delete", "ConfigMap", "geo-config") or act(c, "delete", "Pod", geo_pod(c)),
        # the fix re-creates the ConfigMap; it does not revert geo's legitimate use of it
        lambda c: c.get("ConfigMap", "geo-config", NS)["data"] == {"LOG_LEVEL": "info"}
        and "LOG_LEVEL" in _env(c, "geo")),
}


def staged(world: Any, cluster: Any, mistake: Mistake) -> tuple[list[dict[str, Any]], ChangeJournal]:
    """Healthy warm-up under the journal, benign changes, then the mistake; the alerts it raises."""
    journal = ChangeJournal([NS])
    geo_config(cluster)
    watch(world, cluster, journal, 120)
    act(cluster, "scale", "Deployment", "recommendation", replicas=2)
    act(cluster, "set_env", "Deployment", "profile", env={"LOG_LEVEL": "debug"})
    watch(world, cluster, journal, 120)
    mistake(cluster)
    start = world.clock.now
    alerts: list[dict[str, Any]] = []
    while not alerts and world.clock.now - start < 600:
        watch(world, cluster, journal, 15)
        alerts = [a for a in world.firing() if a["labels"]["alertname"] != "Watchdog"]
    assert alerts, "the mistake raised no alert"
    return alerts, journal


def benign_left_alone(cluster: Any, result: Any) -> None:
    assert cluster.get("Deployment", "recommendation", NS)["spec"]["replicas"] == 2
    assert _env(cluster, "profile")["LOG_LEVEL"] == "debug"
    touched = [t["kubectl"] for t in result.transactions if any("recommendation" in k or "profile" in k.split("\n")[0]
                                                                 for k in t["kubectl"])]
    assert touched == []


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_operator_mistake_is_fixed_by_a_generic_plan(mistake: str, world: Any, cluster: Any) -> None:
    make, fixed = MISTAKES[mistake]
    alerts, journal = staged(world, cluster, make)
    result = invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:"), journal=journal)
    assert result.outcome == "resolved", result.summary
    assert not result.tnr_violation
    assert result.committed and all(t["verdict"] == "commit" for t in result.committed)
    assert fixed(cluster), f"{mistake}: the broken object was not put right ({result.summary[:300]})"
    benign_left_alone(cluster, result)


class RevertBenignFirst(RulesPolicy):
    """A wrong generic plan first: revert the benign env edit on profile to its previous healthy version."""

    def __init__(self, journal: ChangeJournal, wrong: dict[str, Any]) -> None:
        super().__init__(journal=journal)
        self.wrong = wrong

    def next_plan(self, cluster: Any, namespace: str, hypotheses: list[Hypothesis], tried: TriedPlans,
                  *args: Any, **kwargs: Any) -> Any:
        hyp = Hypothesis(component="profile", fault_class="recent_change", confidence=0.99,
                         summary="test double: the most recent change, whatever the symptoms")
        plan = Plan(hypothesis=hyp, actions=[Action(**self.wrong)], expect="wrong on purpose",
                    commands=[render(Action(**self.wrong))])
        if plan.key not in tried:
            return plan
        return super().next_plan(cluster, namespace, hypotheses, tried, *args, **kwargs)


def test_a_wrong_generic_plan_is_undone_by_tnr(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    act(cluster, "set_env", "Deployment", "profile", env={"LOG_LEVEL": "debug"})
    watch(world, cluster, journal, 15)  # the benign edit is not settled yet when the mistake comes
    make, fixed = MISTAKES["service selector"]
    make(cluster)
    start = world.clock.now
    while not world.firing() or world.clock.now - start < 90:
        watch(world, cluster, journal, 15)
    # the generic revert of profile, built as the generic plans build it: back to the version before the edit
    [(actions, _expect)] = list(revert(View.read(cluster, NS, journal=journal), "Deployment", "profile"))
    wrong = {**actions[0].model_dump(), "namespace": NS}
    alerts = [a for a in world.firing() if a["labels"]["alertname"] != "Watchdog"]
    result = invoke_graph(alerts, cluster=cluster, journal=journal, checkpointer=InMemorySaver(),
                          context=Context(db=":memory:", policy=RevertBenignFirst(journal, wrong)))
    first = result.transactions[0]
    assert first["hypothesis"]["component"] == "profile"
    assert first["status"] == "undone" and first["verdict"] in ("ineffective", "regression")
    assert first["restore_ok"] is True
    assert result.outcome == "resolved" and not result.tnr_violation
    assert fixed(cluster)
    assert _env(cluster, "profile")["LOG_LEVEL"] == "debug"  # the benign edit survived the wrong plan
