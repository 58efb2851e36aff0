"""The shipped RBAC objects: generated from the guard's allow-list, and the committed file never drifts."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from stratus.cli import app
from stratus.tools.kubectl.tables import ALLOW_LIST, load
from stratus.tools.rbac import manifests, permissions, render, resource

ROOT = Path(__file__).resolve().parents[2]


def _granted(objects: list[dict], group: str, res: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and res in r["resources"] and verb in r["verbs"]
               for o in objects if o["kind"] in ("Role", "ClusterRole") for r in o["rules"])


def test_committed_yaml_is_what_the_generator_makes() -> None:
    assert (ROOT / "deploy" / "rbac.yaml").read_text() == render(manifests()), \
        "deploy/rbac.yaml is stale: regenerate it with `stratus rbac > deploy/rbac.yaml`"


def test_every_allowed_action_is_granted_where_its_kind_lives() -> None:
    objects = manifests("shop")
    rbac_table = load("rbac.yaml")["actions"]
    for verb, kinds in ALLOW_LIST.items():
        for kind in kinds:
            group, res, namespaced = resource(kind)
            for need in rbac_table[verb]["do"]:
                assert _granted([o for o in objects if o["kind"] == ("Role" if namespaced else "ClusterRole")],
                                group, res, need), (verb, kind, need)


def test_nothing_beyond_the_allow_list_reads_and_the_lock() -> None:
    objects = manifests("shop")
    assert not any(_granted(objects, "", "secrets", v) for v in ("get", "list", "watch"))
    assert not _granted(objects, "rbac.authorization.k8s.io", "clusterroles", "patch")
    assert not _granted(objects, "", "namespaces", "delete")
    assert not _granted(objects, "", "pods", "create")  # a deleted pod is re-created by its controller
    assert _granted(objects, "", "pods/exec", "create")  # the catalogued database commands (exec is allowed)
    assert not _granted(objects, "apps", "replicasets", "update")
    assert _granted(objects, "", "pods/log", "get") and _granted(objects, "coordination.k8s.io", "leases", "update")
    # narrowing the allow-list narrows the rules
    narrow = permissions({"scale": frozenset({"Deployment"})})
    assert narrow[("apps", "deployments", True)] == {"get", "list", "watch", "update"}
    assert narrow[("apps", "statefulsets", True)] == {"get", "list", "watch"}
    assert ("", "pods/exec", True) not in narrow  # granted only with `exec` allowed


def test_bindings_name_the_service_account_in_its_namespace() -> None:
    sa, role, rb, crole, crb = manifests("shop", "sre-bot")
    assert sa["metadata"] == {"name": "sre-bot", "namespace": "shop"}
    assert role["metadata"]["namespace"] == "shop" and rb["roleRef"]["name"] == role["metadata"]["name"]
    assert crb["roleRef"]["name"] == crole["metadata"]["name"] == "sre-bot-shop"
    assert rb["subjects"] == crb["subjects"] == [{"kind": "ServiceAccount", "name": "sre-bot", "namespace": "shop"}]


def test_stratus_rbac_command_prints_the_manifests() -> None:
    out = CliRunner().invoke(app, ["rbac", "--namespace", "shop"])
    assert out.exit_code == 0
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]
    assert docs[1]["metadata"]["namespace"] == "shop"


def test_what_the_analyzers_read_is_granted_where_it_lives() -> None:
    """EndpointSlices and PodDisruptionBudgets in the namespace's Role, StorageClasses in the ClusterRole."""
    _, role, _, crole, _ = manifests("shop")
    for verb in ("get", "list", "watch"):
        assert _granted([role], "discovery.k8s.io", "endpointslices", verb)
        assert _granted([role], "policy", "poddisruptionbudgets", verb)
        assert _granted([crole], "storage.k8s.io", "storageclasses", verb)
    assert resource("PodDisruptionBudget") == ("policy", "poddisruptionbudgets", True)
    assert resource("StorageClass") == ("storage.k8s.io", "storageclasses", False)
    assert not _granted([role], "policy", "poddisruptionbudgets", "delete")  # read, never changed
