"""``POST /api/v1/alerts``: Alertmanager v4 payloads are validated, grouped, deduplicated and stored
before the 202; malformed or oversized ones get a 4xx naming the problem and leave nothing behind."""

from __future__ import annotations

import copy
import json
import sqlite3
from typing import Any

import pytest
from starlette.testclient import TestClient

from stratus.serve.store import intake_store

NS = "test-hotel-reservation"


def _incidents(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/api/v1/incidents")
    assert r.status_code == 200
    return r.json()["incidents"]


def test_a_group_opens_one_incident_and_a_resent_group_updates_it(no_workers: TestClient,
                                                                  twin_payload: dict[str, Any]) -> None:
    first = no_workers.post("/api/v1/alerts", json=twin_payload)
    assert first.status_code == 202
    [inc] = first.json()["incidents"]
    assert inc["created"] is True and inc["id"].startswith("inc-")
    again = no_workers.post("/api/v1/alerts", json=twin_payload)
    assert again.json()["incidents"] == [{"id": inc["id"], "created": False}]
    [row] = _incidents(no_workers)
    assert row["id"] == inc["id"] and row["state"] == "queued" and row["namespace"] == NS
    detail = no_workers.get(f"/api/v1/incidents/{inc['id']}").json()
    assert {a["received"] for a in detail["alerts"]} == {2}
    assert [e["kind"] for e in detail["timeline"]] == ["created", "updated"]


def test_resolved_alerts_are_recorded_on_the_open_incident(no_workers: TestClient,
                                                           twin_payload: dict[str, Any]) -> None:
    inc = no_workers.post("/api/v1/alerts", json=twin_payload).json()["incidents"][0]["id"]
    resolved = copy.deepcopy(twin_payload)
    resolved["status"] = "resolved"
    for a in resolved["alerts"]:
        a.update(status="resolved", endsAt="2026-01-01T00:30:00Z")
    r = no_workers.post("/api/v1/alerts", json=resolved)
    assert r.status_code == 202 and r.json()["incidents"] == [{"id": inc, "created": False}]
    assert r.json()["resolved"] == len(resolved["alerts"])
    detail = no_workers.get(f"/api/v1/incidents/{inc}").json()
    assert {a["status"] for a in detail["alerts"]} == {"resolved"}
    assert len(_incidents(no_workers)) == 1


def test_resolved_alerts_of_no_known_group_open_nothing(no_workers: TestClient, twin_payload: dict[str, Any]) -> None:
    resolved = copy.deepcopy(twin_payload)
    resolved.update(status="resolved", groupKey='{}:{namespace="elsewhere"}')
    for a in resolved["alerts"]:
        a["status"] = "resolved"
    r = no_workers.post("/api/v1/alerts", json=resolved)
    assert r.status_code == 202 and r.json()["incidents"] == []
    assert _incidents(no_workers) == []


def test_an_alert_already_in_an_open_incident_joins_it_from_another_group(no_workers: TestClient,
                                                                          twin_payload: dict[str, Any]) -> None:
    inc = no_workers.post("/api/v1/alerts", json=twin_payload).json()["incidents"][0]["id"]
    other = copy.deepcopy(twin_payload)
    other["groupKey"] = '{}/{severity="critical"}:{alertname="DeploymentNotReady"}'  # a second route
    assert no_workers.post("/api/v1/alerts", json=other).json()["incidents"] == [{"id": inc, "created": False}]


def test_a_hand_written_alert_without_fingerprint_gets_alertmanagers(no_workers: TestClient) -> None:
    body = {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "stratus",
            "alerts": [{"labels": {"alertname": "KubePodCrashLooping", "namespace": NS, "pod": "geo-1"}}]}
    inc = no_workers.post("/api/v1/alerts", json=body).json()["incidents"][0]["id"]
    [alert] = no_workers.get(f"/api/v1/incidents/{inc}").json()["alerts"]
    assert len(alert["fingerprint"]) == 16 and int(alert["fingerprint"], 16) >= 0


def _broken(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(payload)
    target: Any = out
    keys = path.split(".")
    for k in keys[:-1]:
        target = target[int(k)] if k.isdigit() else target[k]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return out


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "field"), [
    ("version", "3", "version"),
    ("groupKey", _DELETE, "groupKey"),
    ("status", "burning", "status"),
    ("alerts", [], "alerts"),
    ("alerts.1.labels", {"severity": "critical"}, "alerts[1].labels"),
    ("alerts.0.startsAt", "yesterday", "alerts[0].startsAt"),
    ("truncatedAlerts", -1, "truncatedAlerts"),
    ("groupKey", "{}:{}\x00", "groupKey"),
    ("alerts.0.fingerprint", "ab\x00", "alerts[0].fingerprint"),
], ids=["old version", "no groupKey", "bad status", "no alerts", "no alertname", "bad startsAt", "negative count",
        "NUL in groupKey", "NUL in fingerprint"])
def test_a_malformed_payload_is_refused_naming_the_field_and_stores_nothing(
        no_workers: TestClient, twin_payload: dict[str, Any], path: str, value: Any, field: str) -> None:
    r = no_workers.post("/api/v1/alerts", json=_broken(twin_payload, path, value))
    assert r.status_code == 422
    body = r.json()
    assert field in [p["field"] for p in body["problems"]] and field in body["error"]
    assert _incidents(no_workers) == []


@pytest.mark.parametrize("raw", [b"firing: KubePodCrashLooping", b"[1, 2]", b"\xff\xfe"],
                         ids=["not JSON", "not an object", "not UTF-8"])
def test_a_body_that_is_not_a_json_object_is_a_400(no_workers: TestClient, raw: bytes) -> None:
    r = no_workers.post("/api/v1/alerts", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["problems"][0]["field"] == "(body)"
    assert _incidents(no_workers) == []


def test_an_oversized_body_is_a_413_naming_the_limit(serve_app: Any, twin_payload: dict[str, Any]) -> None:
    client = serve_app(max_body_bytes=2048)
    big = copy.deepcopy(twin_payload)
    big["commonAnnotations"] = {"description": "x" * 4096}
    r = client.post("/api/v1/alerts", content=json.dumps(big).encode())
    assert r.status_code == 413 and "2048 bytes" in r.json()["error"]
    assert _incidents(client) == []


def test_a_payload_the_store_refuses_is_a_503_and_the_next_one_is_stored(
        no_workers: TestClient, twin_payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 makes Alertmanager send again; the refused payload left nothing, the service goes on."""
    def disk_full(*args: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(intake_store, "record_batch", disk_full)
    monkeypatch.setattr(intake_store, "record_each", disk_full)
    r = no_workers.post("/api/v1/alerts", json=twin_payload)
    assert r.status_code == 503 and "disk is full" in r.json()["error"]
    assert "nothing of it was kept" in r.json()["error"]
    assert _incidents(no_workers) == []
    monkeypatch.undo()
    assert no_workers.post("/api/v1/alerts", json=twin_payload).status_code == 202
    assert len(_incidents(no_workers)) == 1


def test_list_parameters_are_checked(no_workers: TestClient) -> None:
    assert no_workers.get("/api/v1/incidents?state=sleeping").status_code == 400
    assert "limit" in no_workers.get("/api/v1/incidents?limit=0").json()["error"]
    assert no_workers.get("/api/v1/incidents/inc-nope").status_code == 404
