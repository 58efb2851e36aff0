"""The guard's identity check (``stratus.tools.kubectl.identity``, table ``data/identity.yaml``): every
verb that can reach an identity or reserved field is refused when it would change one, and the fixes the
runbooks make stay allowed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stratus.cluster.actions import Action
from stratus.tools import transaction as txn
from stratus.tools.kubectl import VERBS, current_in, guard, parse
from stratus.tools.kubectl.identity import OBJECTS, reached
from stratus.twin.cluster import LOCK_NAME

NODE = {"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "disktype": "ssd"},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0", "note": "x"}},
        "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}
DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "geo", "namespace": "hr", "labels": {"app": "geo"}},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "geo"}},
                   "template": {"metadata": {"labels": {"app": "geo", "version": "1"}},
                                "spec": {"nodeSelector": {"disk": "ssd"},
                                         "containers": [{"name": "geo", "image": "geo:1", "command": ["geo"],
                                                         "readinessProbe": {"tcpSocket": {"port": 8083}}}]}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "geo", "namespace": "hr"},
           "spec": {"clusterIP": "10.96.0.7", "selector": {"app": "geo"},
                    "ports": [{"port": 8083, "targetPort": 9999}]}}
STS = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "hr"},
       "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db"}]}}}}


def _patch(target: str, patch: Any, ptype: str = "strategic", ns: str = "-n hr ") -> str:
    return f"kubectl patch {target} {ns}--type={ptype} -p '{json.dumps(patch)}'"


def _apply(manifest: dict[str, Any], ns: str = "-n hr ") -> str:
    return f"kubectl apply {ns}-f -\n" + json.dumps(manifest)


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    cur = out
    for p in parents:
        cur = cur[p]
    if value is None:
        cur.pop(last)
    else:
        cur[last] = value
    return out


HOST = {"metadata": {"labels": {"kubernetes.io/hostname": "extra-node"}}}
node_apply_host = _with(NODE, "metadata.labels", {"kubernetes.io/hostname": "other", "disktype": "ssd"})

# (command, the object as it is now or None, the field the refusal must name)
REFUSED = [
    # finding 3: the node's hostname label through every verb that can write it
    (_patch("node n1", HOST, ns=""), None, "kubernetes.io/hostname"),
    (_patch("node n1", HOST, "merge", ns=""), None, "kubernetes.io/hostname"),
    (_patch("node n1", [{"op": "replace", "path": "/metadata/labels/kubernetes.io~1hostname", "value": "x"}],
            "json", ns=""), None, "kubernetes.io/hostname"),
    (_patch("node n1", HOST, ns=""), NODE, "kubernetes.io/hostname"),
    (_patch("node n1", [{"op": "remove", "path": "/metadata/labels"}], "json", ns=""), None, "metadata.labels"),
    (_patch("node n1", [{"op": "remove", "path": "/metadata/labels"}], "json", ns=""), NODE,
     "kubernetes.io/hostname"),
    (_patch("node n1", {"metadata": {"labels": None}}, "merge", ns=""), NODE, "kubernetes.io/hostname"),
    (_patch("node n1", {"metadata": {"labels": {"$patch": "replace", "disktype": "ssd"}}}, ns=""), None,
     "metadata.labels"),
    ("kubectl label node n1 kubernetes.io/hostname=extra-node --overwrite", None, "kubernetes.io/hostname"),
    ("kubectl label node n1 topology.kubernetes.io/zone-", None, "topology.kubernetes.io/zone"),
    (_apply(node_apply_host, ns=""), NODE, "kubernetes.io/hostname"),
    (_apply(_with(NODE, "metadata.labels", {"disktype": "ssd"}), ns=""), NODE, "kubernetes.io/hostname"),
    (_apply(NODE, ns=""), None, "kubernetes.io/hostname"),
    ("kubectl annotate node n1 node.alpha.kubernetes.io/ttl=30", None, "node.alpha.kubernetes.io/ttl"),
    ("kubectl taint nodes n1 node-role.kubernetes.io/control-plane:NoSchedule-", None,
     "node-role.kubernetes.io/control-plane"),
    ("kubectl taint nodes n1 node-role.kubernetes.io/control-plane:NoSchedule-", NODE,
     "node-role.kubernetes.io/control-plane"),
    ("kubectl taint nodes n1 node.kubernetes.io/unschedulable=x:NoExecute", NODE, "node.kubernetes.io/unschedulable"),
    (_patch("node n1", [{"op": "remove", "path": "/spec/taints/0"}], "json", ns=""), None, "spec.taints"),
    (_patch("node n1", [{"op": "remove", "path": "/spec/taints/1"}], "json", ns=""), NODE,
     "node-role.kubernetes.io/control-plane"),
    (_patch("node n1", {"spec": {"providerID": "aws:///x"}}, ns=""), None, "spec.providerID"),
    # names and owners, on any kind
    (_patch("deploy/geo", {"metadata": {"name": "geo2"}}, "merge"), None, "metadata.name"),
    (_patch("deploy/geo", [{"op": "replace", "path": "/metadata/namespace", "value": "x"}], "json"), DEPLOY,
     "metadata.namespace"),
    (_patch("cm/c", {"metadata": {"uid": "u"}}, "merge"), None, "metadata.uid"),
    (_patch("deploy/geo", [{"op": "add", "path": "/metadata/ownerReferences", "value": []}], "json"), None,
     "metadata.ownerReferences"),
    # a Service's address
    (_patch("svc/geo", {"spec": {"clusterIP": "10.96.0.8"}}, "merge"), None, "spec.clusterIP"),
    (_patch("svc/geo", [{"op": "replace", "path": "/spec/clusterIP", "value": "None"}], "json"), SERVICE,
     "spec.clusterIP"),
    (_apply(_with(SERVICE, "spec.clusterIP", "10.96.0.9")), SERVICE, "spec.clusterIP"),
    (_apply(SERVICE), None, "spec.clusterIP"),
    # workload selectors and the template labels they match
    (_patch("deploy/geo", {"spec": {"selector": {"matchLabels": {"app": "x"}}}}), None, "spec.selector"),
    (_patch("deploy/geo", [{"op": "replace", "path": "/spec/selector/matchLabels/app", "value": "x"}], "json"),
     DEPLOY, "spec.selector"),
    (_patch("deploy/geo", [{"op": "replace", "path": "/spec/template/metadata/labels/app", "value": "x"}],
            "json"), DEPLOY, "spec.template.metadata.labels['app']"),
    (_patch("deploy/geo", {"spec": {"template": {"metadata": {"labels": {"app": "x"}}}}}), None,
     "spec.template.metadata.labels"),
    (_patch("ds/agent", {"spec": {"template": {"metadata": {"labels": {"app": None}}}}}, "merge"), None,
     "spec.template.metadata.labels"),
    (_apply(_with(DEPLOY, "spec.selector", {"matchLabels": {"app": "geo", "v": "2"}})), DEPLOY, "spec.selector"),
    (_apply(_with(DEPLOY, "spec.template.metadata.labels", {"app": "other"})), DEPLOY,
     "spec.template.metadata.labels['app']"),
    (_apply(DEPLOY), None, "spec.selector"),
    (_patch("sts/db", {"spec": {"serviceName": "db2"}}), STS, "spec.serviceName"),
    (_patch("hpa/geo", {"spec": {"scaleTargetRef": {"name": "other"}}}, "merge"), None, "spec.scaleTargetRef"),
    # a pod's controller label
    ("kubectl label pod geo-abc -n hr pod-template-hash=x --overwrite", None, "pod-template-hash"),
    ("kubectl label pod geo-abc -n hr pod-template-hash-", None, "pod-template-hash"),
    # the STRATUS write lock
    (_patch(f"lease/{LOCK_NAME}", {"spec": {"holderIdentity": "me"}}, "merge"), None, LOCK_NAME),
    (f"kubectl label lease {LOCK_NAME} -n hr x=y", None, LOCK_NAME),
    (_apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LOCK_NAME},
             "spec": {"holderIdentity": "me"}}), None, LOCK_NAME),
    ("kubectl create -n hr -f -\n" + json.dumps({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                  "metadata": {"name": LOCK_NAME}, "spec": {}}), None, LOCK_NAME),
]


@pytest.mark.parametrize(("cmd", "current", "field"), REFUSED, ids=lambda x: str(x)[:60])
def test_identity_fields_are_refused(cmd: str, current: dict[str, Any] | None, field: str) -> None:
    v = guard(cmd, current=current)
    assert not v.allowed, v.kubectl
    assert field in v.reason, v.reason
    assert "Instead:" in v.reason  # says what to do


def test_finding_3_patch_node_hostname_is_refused() -> None:
    """Issue 7, finding 3: only `label` protected reserved node labels; `patch` rewrote the hostname."""
    v = guard("kubectl patch node kind-worker -p "
              "'{\"metadata\":{\"labels\":{\"kubernetes.io/hostname\":\"kind-worker2\"}}}'")
    assert not v.allowed and "kubernetes.io/hostname" in v.reason and "reserved node labels" in v.reason


# the fixes the runbooks, the rules policy and NL2Kubectl make, judged against the object they change
ALLOWED = [
    ("kubectl rollout restart deployment/geo -n hr", DEPLOY),
    ("kubectl rollout undo deployment/geo -n hr --to-revision=2", DEPLOY),
    ("kubectl scale deployment/geo -n hr --replicas=1", DEPLOY),
    ("kubectl set image deployment/geo -n hr geo=geo:2", DEPLOY),
    ("kubectl set env deployment/geo -n hr MONGO_ADDR=mongodb-geo:27017", DEPLOY),
    ("kubectl set resources deployment/geo -n hr --limits=memory=512Mi", DEPLOY),
    (_patch("deploy/geo", [{"op": "remove", "path": "/spec/template/spec/nodeSelector"}], "json"), DEPLOY),
    (_patch("deploy/geo", [{"op": "replace", "path": "/spec/template/spec/containers/0/command",
                            "value": ["geo"]}], "json"), DEPLOY),
    (_patch("deploy/geo", [{"op": "remove", "path": "/spec/template/spec/containers/0/readinessProbe"}],
            "json"), DEPLOY),
    (_patch("deploy/geo", [{"op": "add", "path": "/spec/template/metadata/labels/tier", "value": "b"}], "json"),
     DEPLOY),
    (_patch("deploy/geo", {"spec": {"template": {"metadata": {"labels": {"version": "2"}}}}}), DEPLOY),
    (_apply(_with(DEPLOY, "spec.replicas", 2)), DEPLOY),
    (_apply(_with(DEPLOY, "metadata", {"name": "geo", "labels": {"app": "geo"}})), DEPLOY),  # namespace from -n
    (_patch("svc/geo", [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 8083}], "json"), SERVICE),
    (_patch("svc/geo", {"spec": {"selector": {"app": "geo2"}}}, "merge"), SERVICE),
    (_apply(_with(SERVICE, "spec.clusterIP", None)), SERVICE),  # the API server keeps the address
    ("kubectl uncordon n1", NODE),
    ("kubectl label node n1 disktype=hdd --overwrite", NODE),
    ("kubectl annotate node n1 note-", NODE),
    ("kubectl taint nodes n1 dedicated:NoSchedule-", NODE),
    (_patch("node n1", [{"op": "remove", "path": "/spec/taints/0"}], "json", ns=""), NODE),
    (_patch("node n1", {"metadata": {"labels": {"disktype": None}}}, "merge", ns=""), None),
    (_apply(_with(NODE, "metadata.labels", {"kubernetes.io/hostname": "n1", "disktype": "hdd"}), ns=""), NODE),
    ("kubectl create -n hr -f -\n" + json.dumps(DEPLOY), None),  # a new object defines its identity
    (_apply(DEPLOY), {"kind": "Deployment", "metadata": {"name": "geo", "namespace": "hr"}, "absent": True}),
    ("kubectl label pod geo-abc -n hr quarantine-", None),
    ("kubectl exec deploy/mongodb-geo -n hr -- mongo --eval "
     "\"db.getSiblingDB('admin').grantRolesToUser('admin',[{role:'readWrite',db:'geo-db'}])\"", None),
    ("kubectl delete networkpolicy deny-geo -n hr", None),
]


@pytest.mark.parametrize(("cmd", "current"), ALLOWED, ids=lambda x: str(x)[:60])
def test_right_fixes_are_allowed(cmd: str, current: dict[str, Any] | None) -> None:
    v = guard(cmd, current=current)
    assert v.allowed, v.reason


def test_every_verb_is_covered() -> None:
    """Each verb either reaches a protected field somewhere (and a refusal above shows it) or writes only
    paths that reach none, on every kind it accepts."""
    refused_verbs = {parse(cmd).verb for cmd, _, _ in REFUSED}
    others = {a.verb: a for a in (parse(cmd) for cmd, _ in ALLOWED)} | {
        "cordon": Action(verb="cordon", kind="Node", name="n1"),
        "rollout_undo": parse("kubectl rollout undo sts/db -n hr")}
    for verb in set(VERBS) - refused_verbs:
        a = others[verb]
        for kind in ("Deployment", "StatefulSet", "DaemonSet", "Node", "Service", "Pod"):
            assert reached(kind, VERBS[verb].writes(a)) == [], (verb, kind)
    assert refused_verbs == {"patch", "label", "annotate", "taint", "apply", "create"}


def test_lock_name_matches_the_twin() -> None:
    assert LOCK_NAME in OBJECTS["Lease"]


def test_current_in_finds_the_target_in_a_snapshot() -> None:
    snap = [NODE, DEPLOY]
    assert current_in(parse("kubectl uncordon n1"), snap, "hr") is NODE
    assert current_in(parse("kubectl scale deploy/geo --replicas=2"), snap, "hr") is DEPLOY
    assert current_in(parse("kubectl scale deploy/geo -n other --replicas=2"), snap, "hr") is None


def test_transaction_judges_apply_against_the_live_object(cluster: Any) -> None:
    """Through the transaction the guard sees the object: re-applying a Deployment unchanged passes (the
    path check alone would refuse it), changing its selector or a node's hostname label is refused."""
    ns = "test-hotel-reservation"
    live = cluster.get("Deployment", "geo", ns)
    same = {k: v for k, v in copy.deepcopy(live).items() if k != "status"}
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
        same["metadata"].pop(key, None)
    same["spec"]["replicas"] = 2
    ok = txn.snapshot_and_guard(cluster, txn.begin(cluster, "tx-a", 1, ns, [parse(_apply(same, f"-n {ns} "))],
                                                   None, holder="t", ttl_s=60), {ns})
    assert ok.status == "snapshotted", ok.verdict_reason
    cluster.release_lock(ns, "t")
    bad = copy.deepcopy(same)
    bad["spec"]["selector"]["matchLabels"] = {"app": "stolen"}
    tx = txn.snapshot_and_guard(cluster, txn.begin(cluster, "tx-b", 1, ns, [parse(_apply(bad, f"-n {ns} "))],
                                                   None, holder="t", ttl_s=60), {ns})
    assert tx.status == "refused" and "spec.selector" in (tx.verdict_reason or "")
    cluster.release_lock(ns, "t")
    node = cluster.list("Node")[0]["metadata"]["name"]
    relabel = parse(_patch(f"node {node}", {"metadata": {"labels": {"kubernetes.io/hostname": "x"}}}, ns=""))
    tx = txn.snapshot_and_guard(cluster, txn.begin(cluster, "tx-c", 1, ns, [relabel], None, holder="t",
                                                   ttl_s=60), {ns})
    assert tx.status == "refused" and "kubernetes.io/hostname" in (tx.verdict_reason or "")
