"""The runbooks' rollback with the change journal: it returns to the template the namespace was healthy
with, and it is not offered at all when the live template is that healthy one (the cause lies elsewhere).

Without a journal the rollback keeps its old rule (the newest earlier revision STRATUS did not write),
which goes back past a legitimate change made before the incident. The changes here are made as an
operator's ``kubectl patch`` (directly on the twin's store), so no template carries STRATUS's mark.
"""

from __future__ import annotations

from typing import Any

from stratus.policies.runbooks import REVISION, _undo
from stratus.tools.analyzers import View
from stratus.tools.journal import ChangeJournal
from stratus.twin.faults_ops import container, delete_pods, patch_deployment
from tests.conftest import watch_journal as watch

NS = "test-hotel-reservation"


def set_env(world: Any, name: str, value: str) -> None:
    def change(d: dict[str, Any]) -> None:
        env = [e for e in container(d).get("env", []) if e["name"] != name]
        container(d)["env"] = [*env, {"name": name, "value": value}]
    patch_deployment(world, "geo", change)


def set_image(world: Any, image: str) -> None:
    def change(d: dict[str, Any]) -> None:
        container(d)["image"] = image
    patch_deployment(world, "geo", change)


def revisions(cands: list[Any]) -> list[int]:
    return [a.params["to_revision"] for actions, _ in cands for a in actions]


def revision_with(world: Any, env_value: str) -> int:
    for rs in world.store.list("ReplicaSet", NS):
        envs = {e["name"]: e.get("value") for e in rs["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        if envs.get("LOG_LEVEL") == env_value and rs["spec"]["template"]["spec"]["containers"][0][
                "image"].endswith(":latest"):
            return int(rs["metadata"]["annotations"][REVISION])
    raise AssertionError(f"no ReplicaSet of geo with LOG_LEVEL={env_value}")


def test_the_rollback_returns_to_the_healthy_template_not_past_a_legitimate_change(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 90)
    set_env(world, "LOG_LEVEL", "debug")  # legitimate: stays healthy and becomes the last healthy version
    watch(world, cluster, j, 120)
    set_image(world, "yinfangchen/hotelreservation:nope")
    watch(world, cluster, j, 30)
    set_env(world, "LOG_LEVEL", "trace")  # an edit on top of the broken template
    watch(world, cluster, j, 30)
    healthy_rev = revision_with(world, "debug")
    assert revisions(list(_undo(View.read(cluster, NS, journal=j), "geo"))) == [healthy_rev]
    # without the journal the old rule picks the newest earlier revision: the broken image
    [without] = revisions(list(_undo(View.read(cluster, NS), "geo")))
    assert without != healthy_rev


def test_no_rollback_when_the_live_template_is_the_one_seen_healthy(world: Any, cluster: Any) -> None:
    j = ChangeJournal([NS])
    watch(world, cluster, j, 90)
    set_env(world, "LOG_LEVEL", "debug")
    watch(world, cluster, j, 120)
    delete_pods(world, "geo")  # trouble that is not in the template
    watch(world, cluster, j, 30)
    assert list(_undo(View.read(cluster, NS, journal=j), "geo")) == []
    # the old rule would undo the legitimate change
    assert revisions(list(_undo(View.read(cluster, NS), "geo"))) == [1]
