"""The admission analyzer: quotas named in pod refusals, and LimitRange defaults that OOM-kill containers
that never asked for a limit (and not those that did)."""

from __future__ import annotations

from typing import Any

from stratus.tools.analyzers import run_all
from tests.conftest import act, drain

NS = "test-hotel-reservation"
LR = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "mem", "namespace": NS},
      "spec": {"limits": [{"type": "Container", "default": {"memory": "16Mi"}}]}}


def signals(cluster: Any) -> list[tuple[str | None, str, dict[str, Any]]]:
    _v, findings = run_all(cluster, NS, only=["admission"])
    return [(f.component, f.signal, f.data) for f in findings]


def test_a_quota_refusal_names_the_quota_and_the_deployment(world: Any, cluster: Any) -> None:
    act(cluster, "create", "ResourceQuota", "q", manifest={
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": NS},
        "spec": {"hard": {"limits.memory": "4Gi"}}})
    drain(cluster, "rate")
    world.advance(60)
    [(comp, signal, data)] = signals(cluster)
    assert (comp, signal, data["kind"], data["name"]) == ("rate", "QuotaRefusesPods", "ResourceQuota", "q")


def test_a_limit_range_default_is_blamed_only_where_the_workload_set_no_limit(world: Any, cluster: Any) -> None:
    act(cluster, "create", "LimitRange", "mem", manifest=LR)
    act(cluster, "set_resources", "Deployment", "rate", limits={"memory": "16Mi"}, container="hotel-reserv-rate")
    drain(cluster, "geo")
    world.advance(120)
    rate_ooms = [cs for p in cluster.list("Pod", NS, selector={"io.kompose.service": "rate"})
                 for cs in p["status"].get("containerStatuses") or []
                 if (cs.get("lastState") or {}).get("terminated", {}).get("reason") == "OOMKilled"]
    assert rate_ooms  # rate is OOM-killed too, under the limit it set
    found = signals(cluster)
    assert ("geo", "LimitRangeDefaultOOM") in [(c, s) for c, s, _d in found]
    assert all(c != "rate" for c, _s, _d in found)  # rate asked for 16Mi itself: its own limit, not the default
