"""Generic capacity plans: a quota or a LimitRange that keeps pods from being admitted or running, and a
claim a database cannot mount, put back from the change journal and judged by TNR.

Each test warms the twin up while a ``ChangeJournal`` watches, makes the mistake through the Cluster
protocol (as a person with kubectl would), then asks the rules policy for its diagnosis and plans, and
runs the best plan through the transaction steps (guard and dry run, apply, undo).
"""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action
from stratus.policies.rules import RulesPolicy
from stratus.state import Plan, Transaction
from stratus.tools import transaction as txn
from stratus.tools.journal import ChangeJournal
from stratus.tools.kubectl import render
from stratus.twin.faults import stage
from tests.conftest import act, drain
from tests.conftest import watch_journal as watch

NS = "test-hotel-reservation"
GEO_DB = "mongodb-geo"
CLAIM = "geo-pvc"  # the claim the twin's storage staging gives mongodb-geo


def best_plan(cluster: Any, journal: ChangeJournal | None) -> Plan:
    policy = RulesPolicy(journal)
    _f, hyps, view = policy.diagnose(cluster, NS)
    plan = policy.next_plan(cluster, NS, hyps, {}, view)
    assert plan is not None
    return plan


def heads(plan: Plan) -> list[str]:
    return [c.split("\n")[0] for c in plan.commands]


def run_tx(cluster: Any, plan: Plan) -> Transaction:
    tx = txn.begin(cluster, "t1", 1, NS, plan.actions, None, "test", 600)
    tx = txn.snapshot_and_guard(cluster, tx, {NS})
    assert tx.status == "snapshotted", tx.verdict_reason
    return txn.apply_all(cluster, tx)


def quota(name: str, hard: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": NS},
            "spec": {"hard": hard}}


def test_a_new_quota_that_refuses_pods_is_deleted(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    act(cluster, "create", "ResourceQuota", "compute", manifest=quota("compute", {"limits.memory": "4Gi"}))
    drain(cluster, "geo")
    watch(world, cluster, journal, 120)
    plan = best_plan(cluster, journal)
    assert (plan.hypothesis.fault_class, plan.hypothesis.component) == ("quota_refusal", "geo")
    assert heads(plan) == [f"kubectl delete resourcequota/compute -n {NS}"]
    run_tx(cluster, plan)
    world.advance(120)
    assert cluster.list("Pod", NS, selector={"io.kompose.service": "geo"})


def test_a_tightened_quota_goes_back_to_its_healthy_spec(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    act(cluster, "create", "ResourceQuota", "compute", manifest=quota("compute", {"requests.cpu": "64"}))
    watch(world, cluster, journal, 180)  # the generous quota is seen healthy
    act(cluster, "apply", "ResourceQuota", "compute", manifest=quota("compute", {"requests.cpu": "1m"}))
    drain(cluster, "geo")
    watch(world, cluster, journal, 120)
    plan = best_plan(cluster, journal)
    assert (plan.hypothesis.fault_class, plan.hypothesis.component) == ("quota_refusal", "geo")
    [action] = plan.actions
    assert (action.verb, action.kind) == ("apply", "ResourceQuota")
    assert action.params["manifest"]["spec"] == {"hard": {"requests.cpu": "64"}}


def test_a_quota_without_a_journal_is_left_to_its_owner(world: Any, cluster: Any) -> None:
    act(cluster, "create", "ResourceQuota", "compute", manifest=quota("compute", {"limits.memory": "4Gi"}))
    drain(cluster, "geo")
    world.advance(120)
    policy = RulesPolicy()
    _f, hyps, view = policy.diagnose(cluster, NS)
    hyp = next(h for h in hyps if h.fault_class == "quota_refusal")
    assert hyp.component == "geo" and policy.plans(cluster, NS, hyp, view) == []


def test_a_limit_range_default_is_removed_and_the_pods_it_admitted_restart(world: Any, cluster: Any) -> None:
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 120)
    lr = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "mem-defaults", "namespace": NS},
          "spec": {"limits": [{"type": "Container", "default": {"memory": "16Mi"},
                               "defaultRequest": {"memory": "16Mi"}}]}}
    act(cluster, "create", "LimitRange", "mem-defaults", manifest=lr)
    drain(cluster, "geo")
    watch(world, cluster, journal, 120)
    plan = best_plan(cluster, journal)
    assert (plan.hypothesis.fault_class, plan.hypothesis.component) == ("limit_range_default", "geo")
    # only geo's pods were admitted under the default: no other workload is touched, none gets a limit
    assert heads(plan) == [f"kubectl delete limitrange/mem-defaults -n {NS}",
                           f"kubectl rollout restart deployment/geo -n {NS}"]
    tx = run_tx(cluster, plan)
    world.advance(120)
    pods = cluster.list("Pod", NS, selector={"io.kompose.service": "geo"})
    assert pods and all("memory" not in (c.get("resources") or {}).get("limits", {})
                        for p in pods for c in p["spec"]["containers"])
    # TNR can undo it: the LimitRange is back as it was
    assert txn.undo(cluster, tx) == []
    assert cluster.get("LimitRange", "mem-defaults", NS)["spec"] == lr["spec"]


def staged_claim(world: Any, cluster: Any) -> ChangeJournal:
    """mongodb-geo keeps its data on a claim, seen Bound and healthy by the journal."""
    stage(world, "pvc_deleted", GEO_DB)
    journal = ChangeJournal([NS])
    watch(world, cluster, journal, 240)
    assert cluster.get("PersistentVolumeClaim", CLAIM, NS)["status"]["phase"] == "Bound"
    assert journal.current_is_healthy("PersistentVolumeClaim", CLAIM, NS)
    return journal


def test_a_deleted_claim_is_recreated_empty_and_unbound(world: Any, cluster: Any) -> None:
    journal = staged_claim(world, cluster)
    act(cluster, "delete", "PersistentVolumeClaim", CLAIM)
    drain(cluster, GEO_DB)
    watch(world, cluster, journal, 120)
    plan = best_plan(cluster, journal)
    assert (plan.hypothesis.fault_class, plan.hypothesis.component) == ("claim_unusable", GEO_DB)
    create = plan.actions[0]
    assert (create.verb, create.kind, create.name) == ("create", "PersistentVolumeClaim", CLAIM)
    assert "volumeName" not in create.params["manifest"]["spec"]  # the old volume went with the claim
    tx = run_tx(cluster, plan)
    world.advance(120)
    assert cluster.get("PersistentVolumeClaim", CLAIM, NS)["status"]["phase"] == "Bound"
    assert txn.undo(cluster, tx) == []  # TNR: the claim is gone again, as the undo log recorded it


def test_a_pending_claim_of_a_missing_class_is_deleted_and_recreated(world: Any, cluster: Any) -> None:
    journal = staged_claim(world, cluster)
    healthy = cluster.get("PersistentVolumeClaim", CLAIM, NS)
    act(cluster, "delete", "PersistentVolumeClaim", CLAIM)
    wrong = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": CLAIM, "namespace": NS},
             "spec": {**{k: v for k, v in healthy["spec"].items() if k != "volumeName"}, "storageClassName": "fast"}}
    act(cluster, "create", "PersistentVolumeClaim", CLAIM, manifest=wrong)
    drain(cluster, GEO_DB)
    watch(world, cluster, journal, 120)
    plan = best_plan(cluster, journal)
    assert heads(plan)[:2] == [f"kubectl delete persistentvolumeclaim/{CLAIM} -n {NS}", f"kubectl create -n {NS} -f -"]
    assert plan.actions[1].params["manifest"]["spec"]["storageClassName"] == healthy["spec"]["storageClassName"]
    tx = run_tx(cluster, plan)
    world.advance(120)
    assert cluster.get("PersistentVolumeClaim", CLAIM, NS)["status"]["phase"] == "Bound"
    assert txn.undo(cluster, tx) == []
    assert cluster.get("PersistentVolumeClaim", CLAIM, NS)["spec"]["storageClassName"] == "fast"


def test_without_a_journal_a_pending_claim_gets_the_default_class(world: Any, cluster: Any) -> None:
    stage(world, "pvc_deleted", GEO_DB)
    world.advance(120)
    healthy = cluster.get("PersistentVolumeClaim", CLAIM, NS)
    act(cluster, "delete", "PersistentVolumeClaim", CLAIM)
    wrong = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": CLAIM, "namespace": NS},
             "spec": {"accessModes": healthy["spec"]["accessModes"], "resources": healthy["spec"]["resources"],
                      "storageClassName": "fast"}}
    act(cluster, "create", "PersistentVolumeClaim", CLAIM, manifest=wrong)
    drain(cluster, GEO_DB)
    world.advance(120)
    plan = best_plan(cluster, None)
    assert plan.actions[1].params["manifest"]["spec"]["storageClassName"] == healthy["spec"]["storageClassName"]


def test_a_bound_claim_is_never_deleted_by_a_transaction(world: Any, cluster: Any) -> None:
    staged_claim(world, cluster)
    claim = cluster.get("PersistentVolumeClaim", CLAIM, NS)
    actions = [Action(verb="delete", kind="PersistentVolumeClaim", name=CLAIM, namespace=NS),
               Action(verb="create", kind="PersistentVolumeClaim", name=CLAIM, namespace=NS,
                      params={"manifest": {**claim, "status": {}}})]
    tx = txn.begin(cluster, "t1", 1, NS, actions, None, "test", 600)
    tx = txn.snapshot_and_guard(cluster, tx, {NS})
    assert tx.status == "refused" and "would lose its data" in tx.verdict_reason, tx.verdict_reason
    assert [render(a) for a in actions][0] in tx.verdict_reason
    assert cluster.get("PersistentVolumeClaim", CLAIM, NS)["status"]["phase"] == "Bound"
