"""The Python API: ``invoke_graph`` validates alerts, accepts Alertmanager's shapes, and does nothing
when nothing is wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stratus import AlertValidationError as PublicAlertValidationError
from stratus import invoke_graph as public_invoke_graph
from stratus.api import AlertValidationError, incident_id_for, invoke_graph, parse_alerts
from stratus.context import Context
from stratus.twin.faults import inject
from stratus.twin.prom.alertmanager import webhook_payload

NS = "test-hotel-reservation"
GOOD = {"labels": {"alertname": "HighRequestErrorRate", "namespace": NS, "service_name": "frontend"},
        "startsAt": "2026-01-01T00:10:00Z"}


def test_public_api_reexports() -> None:
    assert public_invoke_graph is invoke_graph
    assert PublicAlertValidationError is AlertValidationError


@pytest.mark.parametrize(("alerts", "field"), [
    ([{"labels": {"severity": "critical"}}], "alerts[0].labels"),
    ([GOOD, {"labels": {"alertname": "X"}, "startsAt": "yesterday"}], "alerts[1].startsAt"),
    ([{"labels": {"alertname": "X"}, "endsAt": "2026-13-45"}], "alerts[0].endsAt"),
    ({"version": "4", "alerts": [GOOD, {"labels": "frontend is down"}]}, "alerts[1].labels"),
    ([{"labels": {"alertname": "X"}, "status": "burning"}], "alerts[0].status"),
    ([{"annotations": {"summary": "no labels at all"}}], "alerts[0].labels"),
], ids=["missing alertname", "bad startsAt", "bad endsAt", "labels not a mapping", "bad status", "no labels"])
def test_invalid_alerts_are_rejected_naming_the_field(alerts: Any, field: str, cluster: Any) -> None:
    before = cluster.now()
    with pytest.raises(AlertValidationError) as err:
        invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:"))
    assert field in str(err.value)
    assert isinstance(err.value, ValueError)
    assert cluster.now() == before, "validation happens before anything touches the cluster"


def test_missing_alertname_message_says_what_is_needed() -> None:
    with pytest.raises(AlertValidationError, match="alertname"):
        parse_alerts([{"labels": {"severity": "critical"}}])


def test_a_string_is_parsed_as_json_or_rejected_with_one_clear_message() -> None:
    assert parse_alerts('{"alerts": []}') == []  # a raw webhook body is accepted
    with pytest.raises(AlertValidationError) as err:
        parse_alerts("firing: KubePodCrashLooping")
    assert "alerts[1]" not in str(err.value) and "not JSON" in str(err.value)


def test_accepts_webhook_payload_and_api_v2_alerts(world: Any, cluster: Any, twin_helpers: Any) -> None:
    inject(world, "scale_to_zero", "profile")
    twin_helpers.advance_until_alerts(world)
    v2 = world.firing()  # GET /api/v2/alerts items: status is {state: active, ...}
    assert v2 and all(isinstance(a["status"], dict) for a in v2)
    payload = webhook_payload(v2)
    assert payload["version"] == "4"

    from_webhook = parse_alerts(payload)
    from_v2 = parse_alerts(v2)
    assert [a.status for a in from_v2] == ["firing"] * len(v2)
    assert [a.labels for a in from_webhook] == [a.labels for a in from_v2]
    assert incident_id_for(from_webhook) == incident_id_for(from_v2), "same alert group, same incident"
    assert parse_alerts(v2[0])[0].labels == v2[0]["labels"], "a single alert is accepted too"

    result = invoke_graph(payload, cluster=cluster, context=Context(db=":memory:"))
    assert result.detected and result.outcome == "resolved"
    assert result.namespace == NS
    assert result.root_cause["component"] == "profile"
    assert result.incident_id == incident_id_for(from_webhook)


def test_api_v2_alerts_drive_an_incident(world: Any, cluster: Any, twin_helpers: Any) -> None:
    inject(world, "network_policy_block", "geo")
    twin_helpers.advance_until_alerts(world)
    result = invoke_graph(copy.deepcopy(world.firing()), cluster=cluster, context=Context(db=":memory:"))
    assert result.outcome == "resolved"
    assert [t["kubectl"] for t in result.committed] == [[f"kubectl delete networkpolicy/deny-geo -n {NS}"]]


def test_no_alerts_on_a_healthy_twin_is_no_incident(cluster: Any) -> None:
    deployments = {d["metadata"]["name"]: d["spec"] for d in cluster.list("Deployment", NS)}
    result = invoke_graph([], cluster=cluster, context=Context(db=":memory:"))
    assert result.outcome == "no_incident" and not result.detected
    assert result.transactions == [] and result.rollbacks == 0
    assert {d["metadata"]["name"]: d["spec"] for d in cluster.list("Deployment", NS)} == deployments


def test_stale_alert_on_a_healthy_twin_changes_nothing(cluster: Any) -> None:
    result = invoke_graph([GOOD], cluster=cluster, context=Context(db=":memory:"))
    assert result.outcome == "no_incident"
    assert result.transactions == []


def test_without_a_cluster_the_embedded_twin_is_used() -> None:
    result = invoke_graph([], context=Context(db=":memory:"))
    assert result.outcome == "no_incident"
    assert result.namespace == NS


def test_incident_id_is_stable_for_the_same_alerts() -> None:
    a = parse_alerts([GOOD, {"labels": {"alertname": "KubePodNotReady", "pod": "geo-1"}}])
    b = parse_alerts(list(reversed([GOOD, {"labels": {"alertname": "KubePodNotReady", "pod": "geo-1"}}])))
    assert incident_id_for(a) == incident_id_for(b)
    assert incident_id_for(a).startswith("inc-")
    assert incident_id_for(a) != incident_id_for(parse_alerts([GOOD]))
