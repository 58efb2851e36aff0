"""Generic plans with the change journal: the side of a reference that changed is put back (a Service
reverted, a deleted workload re-created, a ConfigMap reverted with its readers restarted) before the
side that did not change is adapted, and a selector repair never takes another Service's pods.

Every mistake is made through the Cluster protocol after a healthy warm-up the journal watched.
"""

from __future__ import annotations

import copy
from typing import Any

from stratus.cluster.actions import Action
from stratus.policies.generic import _closest_selector
from stratus.policies.rules import RulesPolicy
from stratus.state import Hypothesis
from stratus.tools.analyzers import View
from stratus.tools.analyzers.changes import _restart_only
from stratus.tools.journal import ChangeJournal
from stratus.tools.kubectl import render
from tests.conftest import watch_journal as watch

NS = "test-hotel-reservation"


def act(cluster: Any, **kw: Any) -> None:
    res = cluster.apply(Action(namespace=NS, **kw))
    assert res.ok, res.message


def first_lines(plan: Any) -> list[str]:
    return [render(a).split("\n")[0] for a in plan.actions]


def ranked_plans(cluster: Any, journal: ChangeJournal) -> list[tuple[str, str, list[str]]]:
    """(class, component, first line of each command) for every plan, best hypothesis first."""
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    return [(h.fault_class, h.component, first_lines(p)) for h in hyps for p in policy.plans(cluster, NS, h, view)]


def test_a_service_whose_port_changed_is_reverted_not_its_clients(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 120)
    act(cluster, verb="patch", kind="Service", name="rate",
        params={"type": "json", "patch": [{"op": "replace", "path": "/spec/ports/0/port", "value": 8085},
                                          {"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8085}]})
    watch(world, cluster, j, 60)
    plans = ranked_plans(cluster, j)
    cls, comp, first = plans[0]
    assert (cls, comp) == ("recent_change", "rate")
    assert first[0] == f"kubectl apply -n {NS} -f -"  # the Service's last healthy manifest
    set_env = [i for i, (_c, _n, lines) in enumerate(plans) if any("set env deployment/search" in x for x in lines)]
    # the client kept its address: only the env_misconfig runbook still offers adapting it, after the revert
    assert all(plans[i][0] == "env_misconfig" for i in set_env)


def test_a_deleted_workload_is_recreated_and_no_other_services_pods_are_taken(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 120)
    assert cluster.world.store.exists("Deployment", "user", NS)
    cluster.world.store.delete("Deployment", "user", NS)  # kubectl delete deployment/user (not an action STRATUS may take)
    watch(world, cluster, j, 180)
    plans = ranked_plans(cluster, j)
    assert plans[0][2][0] == f"kubectl create -n {NS} -f -"
    patches = [lines for _c, _n, lines in plans for x in lines if x.startswith("kubectl patch service/user")]
    assert not patches
    view = View.read(cluster, NS, journal=j)
    assert _closest_selector(view, {"io.kompose.service": "user"}, "user") is None


def test_a_selector_repair_picks_only_a_workload_no_other_service_serves(world: Any, cluster: Any) -> None:
    view = View.read(cluster, NS)
    assert _closest_selector(view, {"io.kompose.service": "geo-v2"}, "geo") == {"io.kompose.service": "geo"}
    assert _closest_selector(view, {"io.kompose.service": "geo-v2"}, "nobody") is None


def test_a_reverted_configmap_restarts_the_workloads_that_read_it_into_env(world: Any, cluster: Any) -> None:
    act(cluster, verb="create", kind="ConfigMap", name="geo-config",
        params={"manifest": {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "geo-config", "namespace": NS},
                             "data": {"MONGO_ADDR": "mongodb-geo:27017"}}})
    d = copy.deepcopy(cluster.get("Deployment", "geo", NS))
    for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
        if e["name"] == "MONGO_ADDR":
            e.pop("value")
            e["valueFrom"] = {"configMapKeyRef": {"name": "geo-config", "key": "MONGO_ADDR"}}
    for k in ("status", "uid", "resourceVersion", "generation", "creationTimestamp"):
        d.pop(k, None)
        d["metadata"].pop(k, None)
    act(cluster, verb="apply", kind="Deployment", name="geo", params={"manifest": d})
    j = ChangeJournal([NS])
    watch(world, cluster, j, 180)
    act(cluster, verb="patch", kind="ConfigMap", name="geo-config",
        params={"type": "merge", "patch": {"data": {"MONGO_ADDR": "mongodb-geo:27018"}}})
    watch(world, cluster, j, 60)
    plans = ranked_plans(cluster, j)
    assert (plans[0][0], plans[0][1]) == ("recent_change", "geo")
    assert plans[0][2][:2] == [f"kubectl apply -n {NS} -f -", f"kubectl rollout restart deployment/geo -n {NS}"]


def test_a_version_with_a_latent_misconfiguration_is_never_last_known_healthy(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 120)
    act(cluster, verb="patch", kind="Service", name="mongodb-user",
        params={"type": "json", "patch": [{"op": "replace", "path": "/spec/ports/0/port", "value": 27018}]})
    watch(world, cluster, j, 300)
    assert j.onset() is not None
    healthy = j.last_healthy("Service", "mongodb-user", NS)
    assert healthy is not None and healthy["spec"]["ports"][0]["port"] == 27017


def test_a_rollout_restart_changes_no_configuration() -> None:
    restart = {"fields": [{"field": "restartedAt", "path": "spec.template.metadata.annotations", "before": "null",
                           "after": '{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:05:00Z"}'}]}
    other = {"fields": [{"field": "restartedAt", "path": "spec.template.metadata.annotations", "before": "null",
                         "after": '{"sidecar.istio.io/inject": "false"}'}]}
    assert _restart_only(restart) and not _restart_only(other)


def test_a_taint_put_on_every_node_is_removed_from_every_node(world: Any, cluster: Any) -> None:
    """The evidence names one node; the same taint on the others is the same mistake, so one plan
    removes it everywhere, while a node tainted differently (someone's maintenance) is left alone."""
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    nodes = sorted(n["metadata"]["name"] for n in cluster.list("Node"))
    for n in nodes[:-1]:
        act(cluster, verb="taint", kind="Node", name=n, params={"add": [{"key": "maintenance", "effect": "NoSchedule"}]})
    act(cluster, verb="taint", kind="Node", name=nodes[-1], params={"add": [{"key": "gpu", "effect": "NoSchedule"}]})
    watch(world, cluster, journal, 30)
    hyp = Hypothesis(component="geo", fault_class="recent_change", confidence=0.9,
                     data={"facts": [{"kind": "Node", "name": nodes[0]}]})
    plan = RulesPolicy(journal).next_plan(cluster, NS, [hyp], {}, None)
    assert plan is not None
    assert sorted(first_lines(plan)) == sorted(f"kubectl taint nodes {n} maintenance:NoSchedule-" for n in nodes[:-1])
