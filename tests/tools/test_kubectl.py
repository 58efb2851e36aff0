"""Tests for stratus.tools.kubectl: parser, renderer, inverse, guard, read-only classification."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from stratus.cluster.actions import Action, Verb
from stratus.cluster.kinds import KINDS
from stratus.tools.kubectl import (
    ALLOW_LIST,
    DELETE_REFUSALS,
    RISKY_VERBS,
    VERBS,
    GuardError,
    GuardVerdict,
    clean_manifest,
    db_state_read,
    guard,
    inverse,
    inverse_supported,
    is_read_only,
    parse,
    render,
    touches,
)

CORPUS = yaml.safe_load((Path(__file__).parent / "kubectl_corpus.yaml").read_text())
SAFE = CORPUS["safe"]
REFUSED = CORPUS["refused"]
GUARD_REFUSED = CORPUS["guard_refused"]


def _id(entry: dict[str, Any]) -> str:
    return entry["cmd"].splitlines()[0][:70] if entry["cmd"] else "<empty>"


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    return expected == actual


def _core(a: Action) -> dict[str, Any]:
    return a.model_dump(exclude={"reason"})


# ------------------------------------------------------------------------------------------------
# corpus
# ------------------------------------------------------------------------------------------------

def test_corpus_size() -> None:
    assert len(SAFE) >= 50
    assert len(REFUSED) >= 50
    assert len({e["cmd"] for e in SAFE + REFUSED + GUARD_REFUSED}) == len(SAFE) + len(REFUSED) + len(GUARD_REFUSED)


@pytest.mark.parametrize("entry", SAFE, ids=_id)
def test_safe_commands_parse(entry: dict[str, Any]) -> None:
    a = parse(entry["cmd"])
    assert a.verb == entry["verb"]
    assert a.kind == entry["kind"]
    assert a.name == entry["name"]
    if "namespace" in entry:
        assert a.namespace == entry["namespace"]
    assert _subset(entry.get("params", {}), a.params), a.params
    # canonical form round-trips
    assert _core(parse(render(a))) == _core(a)
    # and the guard lets it through, scoped to its own namespace
    scope = {a.namespace} if a.namespace else None
    v = guard(entry["cmd"], allowed_namespaces=scope)
    assert v.allowed, v.reason
    assert v.inverse_known
    assert v.kubectl == render(a)
    assert v.action is not None and v.action["verb"] == a.verb


@pytest.mark.parametrize("entry", REFUSED, ids=_id)
def test_refused_commands(entry: dict[str, Any]) -> None:
    with pytest.raises(GuardError) as exc:
        parse(entry["cmd"])
    assert entry["reason"].lower() in exc.value.reason.lower(), exc.value.reason
    v = guard(entry["cmd"])
    assert not v.allowed
    assert v.reason == exc.value.reason
    assert v.action is None and v.kubectl is None


@pytest.mark.parametrize("entry", GUARD_REFUSED, ids=_id)
def test_guard_refusals(entry: dict[str, Any]) -> None:
    parse(entry["cmd"])  # syntactically fine
    scope = set(entry["allowed_namespaces"]) if "allowed_namespaces" in entry else None
    v = guard(entry["cmd"], allowed_namespaces=scope, allow_cluster_scoped=entry.get("allow_cluster_scoped", True))
    assert not v.allowed
    assert entry["reason"].lower() in v.reason.lower(), v.reason
    assert v.action is not None and v.kubectl is not None


# ------------------------------------------------------------------------------------------------
# round trips for every verb
# ------------------------------------------------------------------------------------------------

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "geo", "namespace": "hr", "labels": {"app": "geo"}},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "geo"}},
                   "template": {"metadata": {"labels": {"app": "geo"}},
                                "spec": {"containers": [{"name": "geo", "image": "geo:1", "command": ["geo"],
                                                         "env": [{"name": "YES", "value": "yes"}]}]}}}}

ROUND_TRIP = [
    Action(verb="scale", kind="Deployment", name="geo", namespace="hr", params={"replicas": 3}),
    Action(verb="scale", kind="StatefulSet", name="db", namespace="hr", params={"replicas": 0}),
    Action(verb="patch", kind="Service", name="user", namespace="sn",
           params={"type": "json", "patch": [{"op": "replace", "path": "/spec/ports/0/targetPort", "value": 9090}]}),
    Action(verb="patch", kind="ConfigMap", name="flagd-config", namespace="otel",
           params={"type": "merge", "patch": {"data": {"k": "it's \"quoted\" $(not run) `x`; | &&"}}}),
    Action(verb="patch", kind="Deployment", name="geo", namespace="hr",
           params={"type": "strategic", "patch": {"spec": {"replicas": 2}}}),
    Action(verb="set_image", kind="Deployment", name="geo", namespace="hr",
           params={"images": {"geo": "geo:2", "side": "ghcr.io/x/y@sha256:abc"}}),
    Action(verb="set_env", kind="Deployment", name="fe", namespace="otel",
           params={"env": {"A": "1", "SPACED": "hello world", "EMPTY": "", "Q": "it's"}, "remove": ["OLD"],
                   "container": "fe"}),
    Action(verb="set_env", kind="DaemonSet", name="agent", namespace="mon", params={"env": {}, "remove": ["X"]}),
    Action(verb="set_resources", kind="Deployment", name="valkey", namespace="otel",
           params={"limits": {"memory": "512Mi", "cpu": "1"}, "requests": {"cpu": "100m"}, "container": "valkey"}),
    Action(verb="set_resources", kind="StatefulSet", name="pg", namespace="db",
           params={"limits": {}, "requests": {"memory": "1Gi"}}),
    Action(verb="rollout_undo", kind="Deployment", name="geo", namespace="hr", params={}),
    Action(verb="rollout_undo", kind="Deployment", name="geo", namespace="hr", params={"to_revision": 2}),
    Action(verb="rollout_restart", kind="StatefulSet", name="db", namespace="hr", params={}),
    Action(verb="delete", kind="Pod", name="geo-abc", namespace="hr", params={}),
    Action(verb="delete", kind="NetworkPolicy", name="deny", namespace="sn", params={"grace_period": 5, "wait": False}),
    Action(verb="delete", kind="PodChaos", name="kill", namespace="hr", params={}),
    Action(verb="delete", kind="NetworkChaos", name="delay", namespace="hr", params={}),
    Action(verb="label", kind="Pod", name="geo-abc", namespace="hr",
           params={"set": {"app.kubernetes.io/name": "geo", "x": ""}, "remove": ["q"]}),
    Action(verb="annotate", kind="Deployment", name="geo", namespace="hr",
           params={"set": {"note": "free text; with | symbols & $(x)"}, "remove": ["old"]}),
    Action(verb="cordon", kind="Node", name="worker-1", params={}),
    Action(verb="uncordon", kind="Node", name="worker-1", params={}),
    Action(verb="taint", kind="Node", name="worker-1",
           params={"add": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                           {"key": "gpu", "value": "", "effect": "NoExecute"}],
                   "remove": [{"key": "old", "effect": "PreferNoSchedule"}, {"key": "any"}]}),
    Action(verb="apply", kind="Deployment", name="geo", namespace="hr", params={"manifest": DEPLOY}),
    Action(verb="apply", kind="Node", name="worker-1",
           params={"manifest": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"},
                                "spec": {"unschedulable": True}}}),
    Action(verb="create", kind="Service", name="geo", namespace="hr",
           params={"manifest": {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "geo"},
                                "spec": {"ports": [{"name": "8083", "port": 8083}], "note": "2024-01-01",
                                         "flag": "yes", "n": "1"}}}),
    Action(verb="exec", kind="Deployment", name="mongodb-geo", namespace="hr",
           params={"db_command": {"engine": "mongodb", "client": "mongo", "op": "grant_role", "user": "admin",
                                  "user_db": "admin", "roles": [{"role": "readWrite", "db": "geo-db"}],
                                  "auth": {"user": "root", "pwd": "ro'ot", "db": "admin"}}}),
    Action(verb="exec", kind="Pod", name="mongodb-geo-0", namespace="hr",
           params={"container": "mongo",
                   "db_command": {"engine": "mongodb", "client": "mongosh", "op": "revoke_role", "user": "admin",
                                  "user_db": "admin", "roles": [{"role": "readWrite", "db": "geo-db"}]}}),
    Action(verb="exec", kind="Deployment", name="mongodb-geo", namespace="hr",
           params={"db_command": {"engine": "mongodb", "client": "mongo", "op": "create_user", "user": "admin",
                                  "user_db": "admin", "pwd": "p@ss'w\"d",
                                  "roles": [{"role": "userAdminAnyDatabase", "db": "admin"}]}}),
    Action(verb="exec", kind="StatefulSet", name="mongodb", namespace="hr",
           params={"db_command": {"engine": "mongodb", "client": "mongo", "op": "drop_user", "user": "tmp",
                                  "user_db": "geo-db"}}),
    Action(verb="exec", kind="Deployment", name="valkey-cart", namespace="otel",
           params={"db_command": {"engine": "valkey", "client": "valkey-cli", "op": "set_requirepass", "pwd": ""}}),
    Action(verb="exec", kind="Pod", name="redis-0", namespace="c", params={
        "container": "redis",
        "db_command": {"engine": "valkey", "client": "redis-cli", "op": "set_requirepass", "pwd": "n$w p",
                       "auth": "old pw"}}),
]


@pytest.mark.parametrize("action", ROUND_TRIP, ids=lambda a: f"{a.verb}-{a.kind}")
def test_round_trip(action: Action) -> None:
    cmd = render(action)
    assert "\n" not in cmd or action.verb in ("apply", "create")
    assert _core(parse(cmd)) == _core(action), cmd
    assert render(parse(cmd)) == cmd
    assert render(action) == cmd
    assert _core(parse(cmd)) == _core(action)


def test_round_trip_covers_every_verb() -> None:
    assert {a.verb for a in ROUND_TRIP} == set(get_args(Verb))
    assert set(ALLOW_LIST) == set(get_args(Verb))


def test_render_forms() -> None:
    assert render(ROUND_TRIP[0]) == "kubectl scale deployment/geo -n hr --replicas=3"
    assert render(ROUND_TRIP[2]) == ("kubectl patch service/user -n sn --type=json -p "
                                     "'[{\"op\":\"replace\",\"path\":\"/spec/ports/0/targetPort\",\"value\":9090}]'")
    apply = render(ROUND_TRIP[22])
    head, body = apply.split("\n", 1)
    assert head == "kubectl apply -n hr -f -"
    assert yaml.safe_load(body) == DEPLOY
    assert render(ROUND_TRIP[-2]) == ("kubectl exec deployment/valkey-cart -n otel -- "
                                      "valkey-cli CONFIG SET requirepass ''")
    assert render(ROUND_TRIP[25]) == (
        "kubectl exec deployment/mongodb-geo -n hr -- mongo -u root -p 'ro'\"'\"'ot' --authenticationDatabase admin "
        "--eval \"db.getSiblingDB('admin').grantRolesToUser('admin',[{role:'readWrite',db:'geo-db'}])\"")
    assert render(Action(verb="cordon", kind="Node", name="n1")) == "kubectl cordon n1"


def test_render_rejects_malformed_params() -> None:
    with pytest.raises(GuardError):
        render(Action(verb="scale", kind="Deployment", name="x", namespace="a", params={}))


# ------------------------------------------------------------------------------------------------
# inverse
# ------------------------------------------------------------------------------------------------

LIVE = {**DEPLOY, "metadata": {**DEPLOY["metadata"], "resourceVersion": "42", "uid": "u-1", "generation": 7,
                                "creationTimestamp": "2025-01-01T00:00:00Z", "managedFields": [{}]},
        "status": {"readyReplicas": 1}}


def test_clean_manifest() -> None:
    c = clean_manifest(LIVE)
    assert c == DEPLOY
    assert "status" in LIVE and "uid" in LIVE["metadata"]  # input untouched


@pytest.mark.parametrize("verb,params", [
    ("scale", {"replicas": 2}),
    ("patch", {"type": "merge", "patch": {"spec": {"replicas": 2}}}),
    ("set_image", {"images": {"geo": "geo:2"}}),
    ("set_env", {"env": {"A": "1"}, "remove": []}),
    ("set_resources", {"limits": {"memory": "1Gi"}, "requests": {}}),
    ("label", {"set": {"a": "b"}, "remove": []}),
    ("annotate", {"set": {"a": "b"}, "remove": []}),
    ("rollout_undo", {}),
    ("rollout_restart", {}),
])
def test_inverse_restores_snapshot(verb: str, params: dict[str, Any]) -> None:
    a = Action(verb=verb, kind="Deployment", name="geo", namespace="hr", params=params)
    inv = inverse(a, LIVE)
    assert inv is not None and len(inv) == 1
    assert inv[0].verb == "apply" and inv[0].ref() == a.ref()
    assert inv[0].params == {"manifest": DEPLOY}
    assert inverse(a, None) is None  # no snapshot, no undo
    assert _core(parse(render(inv[0]))) == _core(inv[0])


def test_inverse_delete() -> None:
    owned = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "geo-abc", "namespace": "hr",
                          "ownerReferences": [{"kind": "ReplicaSet", "name": "geo-1", "controller": True}]}}
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "solo", "namespace": "hr", "uid": "x"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}}
    pod = Action(verb="delete", kind="Pod", name="geo-abc", namespace="hr")
    assert inverse(pod, owned) == []
    assert inverse(pod, None) == []
    inv = inverse(Action(verb="delete", kind="Pod", name="solo", namespace="hr"), bare)
    assert inv is not None and inv[0].verb == "apply" and "status" not in inv[0].params["manifest"]
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "deny", "namespace": "sn", "resourceVersion": "9", "uid": "u",
                           "creationTimestamp": "t", "managedFields": [], "generation": 1},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}, "status": {}}
    for kind in ("NetworkPolicy", "PodChaos", "NetworkChaos"):
        inv = inverse(Action(verb="delete", kind=kind, name="deny", namespace="sn"), {**netpol, "kind": kind})
        assert inv is not None and len(inv) == 1 and inv[0].verb == "apply"
        m = inv[0].params["manifest"]
        assert "status" not in m
        assert set(m["metadata"]) == {"name", "namespace"}
    assert inverse(Action(verb="delete", kind="Deployment", name="geo", namespace="hr"), LIVE) is None


def test_inverse_create_and_apply() -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "geo", "namespace": "hr"}, "spec": {}}
    for verb in ("create", "apply"):
        a = Action(verb=verb, kind="Service", name="geo", namespace="hr", params={"manifest": svc})
        inv = inverse(a, None)
        assert inv is not None and [(i.verb, i.ref()) for i in inv] == [("delete", ("Service", "geo", "hr"))]
        inv = inverse(a, {**svc, "status": {}})
        assert inv is not None and inv[0].verb == "apply" and inv[0].params["manifest"] == svc


def test_inverse_cordon_uncordon() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {}}
    cordoned = {**node, "spec": {"unschedulable": True}}
    c = Action(verb="cordon", kind="Node", name="n1")
    u = Action(verb="uncordon", kind="Node", name="n1")
    assert [i.verb for i in inverse(c, node)] == ["uncordon"]
    assert [i.verb for i in inverse(c, None)] == ["uncordon"]
    assert inverse(c, cordoned) == []  # already cordoned: nothing to undo
    assert [i.verb for i in inverse(u, cordoned)] == ["cordon"]
    assert inverse(u, node) == []


def test_inverse_taint() -> None:
    node = {"kind": "Node", "metadata": {"name": "n1"},
            "spec": {"taints": [{"key": "old", "value": "v", "effect": "NoSchedule"},
                                {"key": "dedicated", "value": "web", "effect": "NoSchedule"}]}}
    a = parse("kubectl taint nodes n1 new=x:NoExecute dedicated=db:NoSchedule old:NoSchedule-")
    inv = inverse(a, node)
    assert inv is not None and len(inv) == 1 and inv[0].verb == "taint"
    assert inv[0].params["remove"] == [{"key": "new", "effect": "NoExecute"}]
    assert {"key": "dedicated", "value": "web", "effect": "NoSchedule"} in inv[0].params["add"]
    assert {"key": "old", "value": "v", "effect": "NoSchedule"} in inv[0].params["add"]
    assert _core(parse(render(inv[0]))) == _core(inv[0])
    assert inverse(parse("kubectl taint nodes n1 absent-"), node) == []
    assert inverse(a, None) is None


def _exec(db: dict[str, Any], **extra: Any) -> Action:
    return Action(verb="exec", kind="Deployment", name="mongodb-geo", namespace="hr",
                  params={"db_command": db, **extra})


GRANT = {"engine": "mongodb", "client": "mongo", "op": "grant_role", "user": "admin", "user_db": "admin",
         "roles": [{"role": "readWrite", "db": "geo-db"}], "auth": {"user": "root", "pwd": "root", "db": "admin"}}


HELD = {"user": "admin", "db": "admin", "roles": [{"role": "userAdminAnyDatabase", "db": "admin"}]}
ABSENT = {"user": "admin", "db": "admin", "absent": True}


def test_inverse_exec_mongo() -> None:
    assert inverse(_exec(GRANT), None) is None  # nothing captured: any undo would be a guess
    inv = inverse(_exec(GRANT), HELD)
    assert inv is not None and len(inv) == 1
    assert inv[0].params["db_command"] == {**GRANT, "op": "revoke_role"}
    back = inverse(inv[0], {**HELD, "roles": HELD["roles"] + GRANT["roles"]})
    assert back is not None and back[0].params["db_command"] == GRANT
    assert _core(parse(render(inv[0]))) == _core(inv[0])
    # granting a role the user already had, or to a user that does not exist: nothing to undo
    assert inverse(_exec(GRANT), {**HELD, "roles": GRANT["roles"]}) == []
    assert inverse(_exec(GRANT), ABSENT) == []

    create = {"engine": "mongodb", "client": "mongo", "op": "create_user", "user": "admin", "user_db": "admin",
              "pwd": "admin", "roles": [{"role": "userAdminAnyDatabase", "db": "admin"}]}
    inv = inverse(_exec(create), ABSENT)
    assert inv is not None
    assert inv[0].params["db_command"] == {"engine": "mongodb", "client": "mongo", "op": "drop_user",
                                           "user": "admin", "user_db": "admin"}
    # creating an account that exists fails: dropping the live account would be the only change
    assert inverse(_exec(create), HELD) == []
    drop = inv[0].params["db_command"]
    assert inverse(_exec(drop), HELD) is None  # password unknown
    again = inverse(_exec(drop, previous={"pwd": "admin"}), HELD)
    assert again is not None and again[0].params["db_command"] == create


def test_inverse_exec_requirepass() -> None:
    a = parse("kubectl exec deploy/valkey-cart -n otel -- valkey-cli CONFIG SET requirepass ''")
    assert inverse(a, None) is None  # previous password not captured
    read = db_state_read(a)
    assert render(read) == "kubectl exec deployment/valkey-cart -n otel -- valkey-cli CONFIG GET requirepass"
    inv = inverse(a, {"requirepass": "s3cret"})
    assert inv is not None
    assert inv[0].params["db_command"] == {"engine": "valkey", "client": "valkey-cli", "op": "set_requirepass",
                                           "pwd": "s3cret"}
    assert render(inv[0]) == ("kubectl exec deployment/valkey-cart -n otel -- "
                              "valkey-cli CONFIG SET requirepass s3cret")
    # setting a non-empty password: the undo must authenticate with it
    b = parse("kubectl exec deploy/valkey-cart -n otel -- valkey-cli CONFIG SET requirepass newpw")
    inv = inverse(b, {"requirepass": ""})
    assert inv is not None and inv[0].params["db_command"]["auth"] == "newpw"
    assert inv[0].params["db_command"]["pwd"] == ""


def test_inverse_supported_matches_guard() -> None:
    for entry in SAFE:
        ok, _ = inverse_supported(parse(entry["cmd"]))
        assert ok, entry["cmd"]


# ------------------------------------------------------------------------------------------------
# guard
# ------------------------------------------------------------------------------------------------

def test_guard_accepts_actions_and_dicts() -> None:
    a = Action(verb="scale", kind="deploy", name="geo", namespace="hr", params={"replicas": 1}, reason="fix")
    v = guard(a, allowed_namespaces={"hr"})
    assert isinstance(v, GuardVerdict) and v.allowed
    assert v.action is not None and v.action["kind"] == "Deployment" and v.action["reason"] == "fix"
    assert v.kubectl == "kubectl scale deployment/geo -n hr --replicas=1"
    assert guard(a.model_dump()).allowed
    v = guard({"verb": "scale", "kind": "Deployment", "name": "geo"})
    assert not v.allowed and "missing or malformed params" in v.reason
    v = guard({"verb": "drop_table", "kind": "Deployment", "name": "geo"})
    assert not v.allowed


def test_guard_refuses_injected_action_fields() -> None:
    bad = [
        Action(verb="delete", kind="Namespace", name="test-hotel-reservation"),
        Action(verb="delete", kind="Pod", name="x; rm -rf /", namespace="hr"),
        Action(verb="scale", kind="Deployment", name="geo", namespace="hr --all", params={"replicas": 1}),
        Action(verb="delete", kind="Deployment", name="geo", namespace="hr"),
        Action(verb="exec", kind="Pod", name="geo", namespace="hr",
               params={"db_command": {"op": "drop_database", "user": "x"}}),
    ]
    for a in bad:
        v = guard(a)
        assert not v.allowed, a


def test_guard_requirepass_needs_previous_note() -> None:
    v = guard("kubectl exec deploy/valkey-cart -n otel -- valkey-cli CONFIG SET requirepass ''")
    assert v.allowed and v.inverse_known and "previous" in v.reason
    a = parse("kubectl exec deploy/valkey-cart -n otel -- valkey-cli CONFIG SET requirepass ''")
    a = a.model_copy(update={"params": {**a.params, "previous": "old"}})
    v = guard(a)
    assert v.allowed and v.action is not None and v.action["params"]["previous"] == "old"


def test_guard_drop_user_with_previous() -> None:
    cmd = "kubectl exec deploy/m -n a -- mongo --eval \"db.getSiblingDB('admin').dropUser('tmp')\""
    assert not guard(cmd).allowed
    a = parse(cmd)
    a = a.model_copy(update={"params": {**a.params, "previous": {"pwd": "p", "roles": [{"role": "read",
                                                                                          "db": "x"}]}}})
    assert guard(a).allowed


def test_guard_scope() -> None:
    cmd = "kubectl delete podchaos kill -n test-hotel-reservation"
    assert guard(cmd, allowed_namespaces={"test-hotel-reservation"}).allowed
    v = guard(cmd, allowed_namespaces={"test-social-network"})
    assert not v.allowed and "out of scope" in v.reason and v.inverse_known
    assert guard("kubectl uncordon n1", allowed_namespaces={"x"}).allowed


# ------------------------------------------------------------------------------------------------
# read-only classification
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", [
    "kubectl get pods -n test-hotel-reservation",
    "kubectl -n hr get deploy geo -o yaml",
    "kubectl describe pod geo-abc -n hr",
    "kubectl logs geo-abc -n hr --tail=100 -c hotel-reserv-geo",
    "kubectl top pods -n hr",
    "kubectl get events -n hr --sort-by=.lastTimestamp",
    "kubectl rollout history deploy/geo -n hr",
    "kubectl rollout -n hr status deploy/geo",
    "kubectl auth can-i patch deployments -n hr",
    "kubectl get pods -o jsonpath='{.items[*].metadata.name}'",
    "kubectl api-resources",
])
def test_is_read_only_true(cmd: str) -> None:
    assert is_read_only(cmd)
    with pytest.raises(GuardError, match="read-only command"):
        parse(cmd)


@pytest.mark.parametrize("cmd", [
    "kubectl get pods | sh",
    "kubectl get pods; kubectl delete ns x",
    "kubectl get pods > /tmp/x",
    "kubectl get pods --kubeconfig /tmp/k",
    "kubectl --context prod get pods",
    "kubectl get pods -w",
    "kubectl logs -f geo",
    "kubectl get secret mongo-creds -o yaml -n hr",
    "kubectl get secrets,pods -n hr",
    "kubectl describe secrets/x",
    "kubectl scale deploy/x --replicas=1",
    "kubectl delete pod x",
    "kubectl exec geo -- cat /etc/passwd",
    "kubectl rollout restart deploy/x",
    "kubectl cluster-info dump",
    "get pods",
    "kubectl get pods\nkubectl delete ns x",
    "",
])
def test_is_read_only_false(cmd: str) -> None:
    assert not is_read_only(cmd)


# ------------------------------------------------------------------------------------------------
# verb registry
# ------------------------------------------------------------------------------------------------

def test_every_verb_has_exactly_one_registry_entry() -> None:
    verbs = get_args(Verb)
    assert sorted(VERBS) == sorted(verbs) and len(set(verbs)) == len(verbs)
    commands = [spec.command for spec in VERBS.values()]
    assert len(set(commands)) == len(commands), "two entries claim the same kubectl command"
    for verb, spec in VERBS.items():
        assert spec.verb == verb
        # parse, render, guard rules (allow-list + policy) and inverse knowledge, all present
        for part in (spec.parse, spec.render, spec.inverse, spec.undo_note, spec.policy, spec.touches):
            assert callable(part), (verb, part)
        assert ALLOW_LIST[verb], f"{verb} has no allowed kinds"
        assert 1 <= len(spec.command) <= 2


def test_every_registry_entry_is_exercised_by_the_corpus() -> None:
    parsed = {parse(e["cmd"]).verb for e in SAFE}
    assert parsed == set(VERBS)


def test_kubectl_tables_name_known_kinds_and_do_not_contradict() -> None:
    assert set(ALLOW_LIST) == set(VERBS)
    assert all(kinds <= set(KINDS) for kinds in ALLOW_LIST.values())
    assert set(DELETE_REFUSALS) <= set(KINDS)
    assert not set(DELETE_REFUSALS) & ALLOW_LIST["delete"]


def test_touches_names_the_snapshotted_object() -> None:
    assert touches(parse("kubectl scale deploy/geo --replicas=1"), "hr") == ("Deployment", "geo", "hr")
    assert touches(parse("kubectl cordon n1"), "hr") == ("Node", "n1", None)
    created = parse("kubectl create -f -\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}")
    assert touches(created, "hr") == ("ConfigMap", "c", "other")
    assert touches(parse("kubectl exec deploy/v -n o -- valkey-cli CONFIG SET requirepass x"), "o") is None


def test_risky_verbs() -> None:
    assert RISKY_VERBS == {"delete", "exec", "apply", "create", "taint", "cordon", "patch", "set_resources"}
