"""TNR transactions through the tools: a wrong fix lowers health, is judged a regression, and is undone.

These drive ``stratus.tools.transaction`` and ``stratus.tools.health.tnr_verdict`` directly (no graph),
the same steps the Mitigation and Undo agents run: begin, snapshot + guard, apply, settle, measure,
verdict, undo, settle, verify.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stratus.cluster.actions import Action
from stratus.cluster.mutate import clean_manifest
from stratus.state import HealthReport, Transaction
from stratus.tools import transaction as txn
from stratus.tools.analyzers import assess
from stratus.tools.health import noise_eps, tnr_verdict
from stratus.tools.kubectl import parse

NS = "test-hotel-reservation"


def run_tx(cluster: Any, ctx: Any, actions: list[Action], holder: str = "test-incident"
           ) -> tuple[Transaction, HealthReport, HealthReport, str, str]:
    """begin -> snapshot/guard -> apply -> settle -> measure -> verdict (no undo yet)."""
    eps = noise_eps(cluster, ctx, NS)
    tx = txn.begin(cluster, "tx-test", 1, NS, actions, None, holder=holder, ttl_s=600)
    tx.eps = eps
    before = assess(cluster, ctx, NS)
    tx = txn.snapshot_and_guard(cluster, tx, {NS})
    assert tx.status == "snapshotted", tx.verdict_reason
    tx = txn.apply_all(cluster, tx)
    assert all(r["ok"] for r in tx.results), tx.results
    txn.settle(cluster, ctx, txn.refs_for(actions, NS))
    after = assess(cluster, ctx, NS)
    verdict, reason = tnr_verdict(before, after, eps, ctx.delta, bool(after.unhealthy))
    return tx, before, after, verdict, reason


def _spec_now(cluster: Any, m: dict[str, Any]) -> Any:
    got = cluster.snapshot([(m["kind"], m["metadata"]["name"], m["metadata"].get("namespace"))])[0]
    return None if got.get("absent") else clean_manifest(got).get("spec")


WRONG_FIXES = {
    "scale the entry point to zero": f"kubectl scale deployment frontend -n {NS} --replicas=0",
    "wrong Service targetPort": (f"kubectl patch svc geo -n {NS} --type=json -p "
                                 + "'" + json.dumps([{"op": "replace", "path": "/spec/ports/0/targetPort",
                                                      "value": 9999}]) + "'"),
    "caller pointed at a dead port": f"kubectl set env deployment/search -n {NS} GEO_ADDR=geo:1",
    "memory limit below the working set": f"kubectl set resources deployment rate -n {NS} --limits=memory=16Mi",
    "image that does not exist": (f"kubectl set image deployment/geo -n {NS} "
                                  "hotel-reserv-geo=yinfangchen/hotelreservation:nope"),
}


@pytest.mark.parametrize("command", list(WRONG_FIXES.values()), ids=list(WRONG_FIXES))
def test_wrong_fix_is_a_regression_and_undo_restores(command: str, cluster: Any, ctx: Any) -> None:
    action = parse(command)
    tx, before, after, verdict, reason = run_tx(cluster, ctx, [action])
    assert before.H == pytest.approx(0.5, abs=0.005) and before.unhealthy == []
    assert verdict == "regression", reason
    assert after.H < before.H - tx.eps or set(after.unhealthy) - set(before.unhealthy)
    changed = [m for m in tx.snapshot if _spec_now(cluster, m) != clean_manifest(m).get("spec")]
    assert changed, "the wrong fix must have changed the object it touched"

    mismatched = txn.undo(cluster, tx)
    assert mismatched == []
    for m in tx.snapshot:
        assert _spec_now(cluster, m) == clean_manifest(m).get("spec"), f"{m['kind']}/{m['metadata']['name']}"
    txn.settle(cluster, ctx, txn.refs_for([action], NS))
    restored = assess(cluster, ctx, NS)
    assert restored.H >= before.H - tx.eps


@pytest.mark.parametrize("command", [
    "kubectl rollout restart deployment/search -n {ns}",
    "kubectl delete pod {pod} -n {ns}",
], ids=["rollout restart", "delete a controlled pod"])
def test_harmless_change_on_healthy_twin_commits(command: str, cluster: Any, ctx: Any) -> None:
    pod = cluster.list("Pod", NS, {"io.kompose.service": "search"})[0]["metadata"]["name"]
    action = parse(command.format(ns=NS, pod=pod))
    _tx, before, after, verdict, reason = run_tx(cluster, ctx, [action])
    assert verdict == "commit", reason
    assert after.H >= before.H - 0.005 and after.unhealthy == []
    new = cluster.list("Pod", NS, {"io.kompose.service": "search"})
    assert [p["metadata"]["name"] for p in new] != [pod], "the change really replaced the pod"


def test_created_object_is_deleted_on_undo(cluster: Any, ctx: Any) -> None:
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "deny-geo", "namespace": NS},
              "spec": {"podSelector": {"matchLabels": {"io.kompose.service": "geo"}},
                       "policyTypes": ["Ingress"], "ingress": []}}
    action = Action(verb="create", kind="NetworkPolicy", name="deny-geo", namespace=NS,
                    params={"manifest": policy})
    tx, _before, _after, verdict, reason = run_tx(cluster, ctx, [action])
    assert tx.snapshot[0].get("absent") is True, "a create's undo log records the object as absent"
    assert verdict == "regression", reason
    assert txn.undo(cluster, tx) == []
    assert not any(p["metadata"]["name"] == "deny-geo" for p in cluster.list("NetworkPolicy", NS))


def test_database_change_is_undone_by_its_inverse_command(cluster: Any, ctx: Any) -> None:
    world = cluster.world
    roles_before = copy.deepcopy(world.db["mongodb-geo"]["users"]["admin"]["roles"])
    revoke = parse(
        f"kubectl exec deploy/mongodb-geo -n {NS} -- mongo admin -u root -p root --authenticationDatabase admin "
        "--eval \"db.revokeRolesFromUser('admin',[{role:'readWrite',db:'geo-db'}])\"")
    tx = txn.begin(cluster, "tx-db", 1, NS, [revoke], None, holder="test", ttl_s=600)
    tx = txn.snapshot_and_guard(cluster, tx, {NS})
    assert tx.status == "snapshotted" and tx.inverse, "exec needs a catalogued inverse in the undo log"
    txn.apply_all(cluster, tx)
    assert world.db["mongodb-geo"]["users"]["admin"]["roles"] != roles_before
    assert txn.undo(cluster, tx) == []
    assert sorted(map(str, world.db["mongodb-geo"]["users"]["admin"]["roles"])) == sorted(map(str, roles_before))


def test_guard_refuses_out_of_scope_and_failing_dry_run_without_changing_anything(cluster: Any) -> None:
    before = {d["metadata"]["name"]: d["spec"] for d in cluster.list("Deployment", NS)}
    out_of_scope = parse("kubectl scale deployment frontend -n kube-system --replicas=0")
    missing = parse(f"kubectl scale deployment no-such-thing -n {NS} --replicas=1")
    for action, why in ((out_of_scope, "out of scope"), (missing, "server dry run failed")):
        tx = txn.begin(cluster, "tx-refused", 1, NS, [action], None, holder="test", ttl_s=600)
        tx = txn.snapshot_and_guard(cluster, tx, {NS})
        assert tx.status == "refused" and tx.verdict == "refused"
        assert why in tx.verdict_reason
        cluster.release_lock(NS, "test")
    assert {d["metadata"]["name"]: d["spec"] for d in cluster.list("Deployment", NS)} == before


def test_namespace_write_lock_refuses_a_second_holder(cluster: Any) -> None:
    a = parse(f"kubectl rollout restart deployment/search -n {NS}")
    first = txn.begin(cluster, "tx-a", 1, NS, [a], None, holder="incident-a", ttl_s=600)
    second = txn.begin(cluster, "tx-b", 1, NS, [a], None, holder="incident-b", ttl_s=600)
    assert first.status == "begun"
    assert second.status == "refused" and "locked" in second.verdict_reason
    cluster.release_lock(NS, "incident-a")
    third = txn.begin(cluster, "tx-c", 1, NS, [a], None, holder="incident-b", ttl_s=600)
    assert third.status == "begun"
    cluster.wait(601)
    assert txn.begin(cluster, "tx-d", 1, NS, [a], None, holder="incident-a", ttl_s=600).status == "begun", \
        "an expired lease can be taken over"


def test_refs_for_lists_each_object_once_and_skips_exec() -> None:
    actions = [parse(f"kubectl scale deployment geo -n {NS} --replicas=1"),
               parse(f"kubectl rollout restart deployment/geo -n {NS}"),
               parse(f"kubectl exec deploy/mongodb-geo -n {NS} -- mongo --eval "
                                   "\"db.getSiblingDB('admin').grantRolesToUser('admin',[{role:'readWrite',"
                                   "db:'geo-db'}])\""),
               parse("kubectl cordon kind-worker")]
    assert txn.refs_for(actions, NS) == [("Deployment", "geo", NS), ("Node", "kind-worker", None)]


MONGO_GEO = f"kubectl exec deploy/mongodb-geo -n {NS} -- mongo --eval "


def _db_tx(cluster: Any, command: str) -> Transaction:
    tx = txn.begin(cluster, "tx-db", 1, NS, [parse(command)], None, holder="test", ttl_s=600)
    tx = txn.snapshot_and_guard(cluster, tx, {NS})
    assert tx.status == "snapshotted", tx.verdict_reason
    return txn.apply_all(cluster, tx)


def test_grant_of_a_role_already_held_is_not_revoked_by_the_undo(cluster: Any) -> None:
    users = cluster.world.db["mongodb-geo"]["users"]
    held = copy.deepcopy(users["admin"]["roles"])
    assert {"role": "readWrite", "db": "geo-db"} in held
    tx = _db_tx(cluster, MONGO_GEO + "\"db.getSiblingDB('admin').grantRolesToUser('admin',"
                                    "[{role:'readWrite',db:'geo-db'}])\"")
    assert txn.undo(cluster, tx) == []
    assert users["admin"]["roles"] == held, "the service keeps its access"
    assert tx.inverse == [], "nothing to undo: the user already held the role"
    assert tx.db_snapshot[0]["state"]["roles"] == held, "the roles were captured before the change"


def test_failed_create_user_for_an_existing_account_is_not_undone_by_dropping_it(cluster: Any) -> None:
    users = cluster.world.db["mongodb-geo"]["users"]
    account = copy.deepcopy(users["admin"])
    tx = _db_tx(cluster, MONGO_GEO + "\"db.getSiblingDB('admin').createUser({user:'admin',pwd:'other',"
                                    "roles:[{role:'readWrite',db:'geo-db'}]})\"")
    assert not tx.results[0]["ok"] and "already exists" in tx.results[0]["message"]
    assert txn.undo(cluster, tx) == []
    assert users.get("admin") == account, "the live account is untouched"
    assert tx.inverse == []


def test_created_user_is_dropped_by_the_undo(cluster: Any) -> None:
    users = cluster.world.db["mongodb-geo"]["users"]
    tx = _db_tx(cluster, MONGO_GEO + "\"db.getSiblingDB('admin').createUser({user:'audit',pwd:'pw',"
                                    "roles:[{role:'read',db:'geo-db'}]})\"")
    assert tx.results[0]["ok"] and "audit" in users
    assert txn.undo(cluster, tx) == []
    assert "audit" not in users


def test_restore_that_does_not_match_the_captured_state_reports_both(cluster: Any) -> None:
    users = cluster.world.db["mongodb-geo"]["users"]
    tx = _db_tx(cluster, MONGO_GEO + "\"db.getSiblingDB('admin').grantRolesToUser('admin',"
                                    "[{role:'dbAdmin',db:'geo-db'}])\"")
    captured = {"user": "admin", "db": "admin", "roles": [r for r in users["admin"]["roles"]
                                                          if r != {"role": "dbAdmin", "db": "geo-db"}]}
    del users["admin"]  # someone dropped the account meanwhile: the revoke cannot bring it back
    mismatch = txn.undo(cluster, tx)
    assert [(m["captured"], m["observed"]) for m in mismatch] == \
        [(captured, {"user": "admin", "db": "admin", "absent": True})]
    assert "getUser('admin')" in mismatch[0]["object"]


def test_settling_stops_early_for_a_rollout_whose_pods_are_stuck(cluster: Any, ctx: Any) -> None:
    """A new image that does not exist: its pods sit in ImagePullBackOff and the rollout never finishes,
    so the wait ends after the settle window; a rollout that is merely in progress is waited for."""
    bad = parse(f"kubectl set image deployment/geo -n {NS} hotel-reserv-geo=yinfangchen/hotelreservation:nope")
    assert cluster.apply(bad).ok
    assert txn.settle(cluster, ctx, txn.refs_for([bad], NS)) < ctx.settle_max_s
    pods = cluster.list("Pod", NS, selector={"io.kompose.service": "geo"})
    assert pods and any(txn._stuck(p) for p in pods)
    good = parse(f"kubectl rollout restart deployment/rate -n {NS}")
    assert cluster.apply(good).ok
    cluster.wait(1.0)
    assert txn._rolling(cluster, txn.refs_for([good], NS)) == ["rate"], "a healthy rollout in progress is busy"
