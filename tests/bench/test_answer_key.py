"""The answer key stays out of the agents' reach.

A scenario's id names its fault and its target, and the fault type names the cause. Each case runs a
committed scenario through the benchmark's own runner with the twin's Cluster wrapped in a recorder that
keeps every result an agent could read through the Cluster protocol: what the agent itself asked for
(list, get, events, logs, query, query_range, traces, alerts, and what its writes returned), plus, at
every wait, a sweep of everything readable (every kind, every pod's logs, every series, every trace and
alert), so a write lock held mid-transaction is seen. The agent's own checkpoints (every state the graph
wrote) are added. Neither the scenario id nor the fault type may occur anywhere in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stratus.api import open_checkpointer
from stratus.bench.runner import prepare, run_scenario
from stratus.bench.scenarios import load_scenario
from stratus.cluster.base import ClusterError
from stratus.cluster.kinds import KINDS

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
READS = ("list", "get", "events", "logs", "query", "query_range", "traces", "alerts")
CASES = ["hotel-mongodb-geo-revoke-db-role", "hotel-profile-scale-to-zero", "hotel-geo-service-target-port",
         "hotel-search-nonexistent-node-selector", "hotel-mongodb-reservation-drop-db-user",
         "hotel-user-network-policy-block"]


def _text(value: Any) -> str:
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return json.dumps(value, default=str, sort_keys=True)


class Recorder:
    """A Cluster that writes down every result it hands out, and sweeps everything readable at each wait."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self.seen: list[str] = []
        self.sweeps = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._cluster, name)
        if name not in READS + ("apply", "snapshot", "restore", "acquire_lock", "release_lock"):
            return attr

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.seen.append(_text([name, args, kwargs]))
            out = attr(*args, **kwargs)
            self.seen.append(_text(out))
            return out
        return recorded

    def wait(self, seconds: float) -> None:
        self._cluster.wait(seconds)
        self.sweep()

    def sweep(self) -> None:
        c, ns = self._cluster, self._cluster.namespace
        self.sweeps += 1
        for kind, spec in KINDS.items():
            self.seen.append(_text(c.list(kind, ns if spec["namespaced"] else None, limit=10_000)))
        for pod in c.list("Pod", ns, limit=10_000):
            for previous in (False, True):
                try:
                    self.seen.append(_text(c.logs(pod["metadata"]["name"], ns, tail=10_000, previous=previous)))
                except ClusterError:
                    pass
        self.seen += [_text(c.events(ns, limit=10_000)), _text(c.events(None, limit=10_000)),
                      _text(c.alerts()), _text(c.traces(limit=10_000)),
                      _text(c.query('{__name__=~".+"}')),
                      _text(c.query_range('{__name__=~"ALERTS.*"}', c.now() - 600, c.now(), 60))]


def _needles(sc: Any) -> list[str]:
    out = [sc.id]
    for f in sc.faults:
        out += [f.type, f.type.replace("_", "-")]
    return out


@pytest.mark.parametrize("name", CASES)
def test_nothing_readable_names_the_scenario_or_the_fault(name: str) -> None:
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    world, cluster, records, base, injected_at = prepare(sc)
    rec = Recorder(cluster)
    with open_checkpointer(":memory:") as saver:
        row = run_scenario(sc, prepared=(world, rec, records, base, injected_at), checkpointer=saver)
        checkpoints = [_text(cp.checkpoint["channel_values"]) for cp in saver.list(None)]
    assert row["transactions"] >= 1 and rec.sweeps > 0, "the agent acted, so there was something to read"
    assert checkpoints
    haystack = "\n".join(rec.seen + checkpoints).lower()
    assert "stratus-tnr-lock" in haystack, "the sweep saw the write lock while it was held"
    assert row["incident_id"].lower() in haystack
    for needle in _needles(sc):
        assert needle.lower() not in haystack, f"{needle!r} is readable by the agent"


def test_analysis_labels_are_the_policys_own_reading_and_can_be_wrong() -> None:
    """The rules policy labels what it diagnosed from its own table; the grader compares them with the
    scenario's expected labels, so a run can localise the fault right and still get the labels wrong."""
    wrong = run_scenario(SCENARIOS / "hotel-profile-wrong-command.yaml")
    assert wrong["localization_correct"] and wrong["mitigated"]
    assert wrong["analysis_correct"] is False
    right = run_scenario(SCENARIOS / "hotel-profile-scale-to-zero.yaml")
    assert right["analysis_correct"] is True
