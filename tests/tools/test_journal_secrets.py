"""A deleted Secret re-created from the journal's memory, and its contents nowhere else: not in change
records, manifests the journal hands out, plans, kubectl text, transaction results, checkpoints,
copies, pickles, reprs or logs.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import pytest

from stratus.bench.runner import run_scenario
from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError
from stratus.tools.journal import RESTORE, ChangeJournal, restore_secret, with_secret_data
from stratus.tools.kubectl import guard, render
from stratus.twin.world import World

NS = "test-hotel-reservation"
VALUE = base64.b64encode(b"s3cr3t-hunter2-value").decode()
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def watch(world: Any, cluster: Any, journal: ChangeJournal, seconds: float) -> None:
    end = world.clock.now + seconds
    while world.clock.now < end:
        world.advance(15)
        journal.observe(cluster)


def with_deleted_secret(world: Any, cluster: Any) -> ChangeJournal:
    world.store.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                        "metadata": {"name": "db-credentials", "namespace": NS}, "data": {"password": VALUE}})
    j = ChangeJournal([NS])
    watch(world, cluster, j, 120)
    world.store.delete("Secret", "db-credentials", NS)
    watch(world, cluster, j, 30)
    return j


def test_a_deleted_secret_is_restored_from_memory_with_masked_text(world: Any, cluster: Any) -> None:
    j = with_deleted_secret(world, cluster)
    action = restore_secret(j, "db-credentials", NS)
    assert action is not None and action.params[RESTORE]["name"] == "db-credentials"
    text = render(action) + json.dumps(action.model_dump()) + json.dumps(j.recent()) + repr(j.secrets)
    assert VALUE not in text and "password" in render(action)  # the keys are named, never the values
    assert guard(action).allowed
    res = cluster.apply(with_secret_data(action))
    assert res.ok and cluster.get("Secret", "db-credentials", NS)["data"] == {"password": VALUE}
    assert VALUE not in json.dumps(action.model_dump())  # filling in made a copy


def test_copies_and_pickles_of_the_memory_carry_no_contents(world: Any, cluster: Any) -> None:
    j = with_deleted_secret(world, cluster)
    assert VALUE not in repr(j.secrets)
    assert copy.deepcopy(j.secrets).contents(("Secret", "db-credentials", NS)) is None
    assert VALUE.encode() not in pickle.dumps(j.secrets)
    assert pickle.loads(pickle.dumps(j.secrets)).keys(("Secret", "db-credentials", NS)) is None
    assert j.last_healthy("Secret", "db-credentials", NS) == {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": NS}}


def test_a_restore_whose_memory_is_gone_fails_naming_the_secret() -> None:
    action = Action(verb="create", kind="Secret", name="db-credentials", namespace=NS,
                    params={"manifest": {"kind": "Secret"}, RESTORE: {"journal": "gone", "name": "db-credentials",
                                                                       "namespace": NS}})
    with pytest.raises(ClusterError, match="Secret db-credentials in namespace test-hotel-reservation"):
        with_secret_data(action)


def test_a_secret_is_only_ever_created_never_patched_or_applied() -> None:
    manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": NS}, "data": {}}
    assert guard(Action(verb="create", kind="Secret", name="x", namespace=NS, params={"manifest": manifest})).allowed
    assert not guard(Action(verb="apply", kind="Secret", name="x", namespace=NS, params={"manifest": manifest})).allowed
    assert not guard(Action(verb="patch", kind="Secret", name="x", namespace=NS,
                            params={"type": "merge", "patch": {"data": {}}})).allowed


def test_a_run_that_restores_a_secret_leaks_it_nowhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "incidents.db"
    with caplog.at_level(logging.DEBUG):
        row = run_scenario(SCENARIOS / "hotel-ops-user-secret-missing.yaml", db=str(db))
    assert row["mitigated"] and any("kind: Secret" in a for a in row["actions"])
    pwd = World("hotel-reservation").app.app_credentials["pwd"]
    value = base64.b64encode(pwd.encode()).decode()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert stored and value.encode() not in stored
    assert value not in json.dumps(row) and value not in caplog.text
