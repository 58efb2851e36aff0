"""The service end to end in-process: workers run the graph, the incident API shows the transaction log
with TNR verdicts, approvals work over the API, auth and metrics say what they should."""

from __future__ import annotations

from typing import Any

from serve_helpers import until
from starlette.testclient import TestClient

TOKEN = "s3cret-token"


def _done(client: TestClient, incident: str) -> Any:
    return until(lambda: (v := client.get(f"/api/v1/incidents/{incident}").json())["state"] == "done" and v,
                 what=f"incident {incident} done")


def test_an_accepted_incident_is_fixed_and_its_log_served(serve_app: Any, twin_payload: dict[str, Any]) -> None:
    client = serve_app()
    incident = client.post("/api/v1/alerts", json=twin_payload).json()["incidents"][0]["id"]
    view = _done(client, incident)
    assert view["outcome"] == "resolved"
    [tx] = view["transactions"]
    assert tx["status"] == "committed" and tx["verdict"] == "commit"
    assert tx["kubectl"] == ["kubectl scale deployment/rate -n test-hotel-reservation --replicas=1"]
    assert tx["H_after"] > tx["H_before"]
    kinds = [(e["source"], e["kind"]) for e in view["timeline"]]
    assert kinds[0] == ("intake", "created") and kinds[-1] == ("intake", "finished")
    nodes = [e["next"][0] for e in view["timeline"] if e["source"] == "graph"]
    assert nodes.index("begin") < nodes.index("execute") < nodes.index("validate")

    metrics = client.get("/metrics").text
    assert 'stratus_incidents_total{outcome="resolved"} 1.0' in metrics
    assert 'stratus_tnr_verdicts_total{verdict="commit"} 1.0' in metrics
    assert "stratus_actions_total 1.0" in metrics
    assert 'stratus_queue_depth{state="queued"} 0.0' in metrics
    assert "stratus_incident_processing_seconds_count 1.0" in metrics
    assert client.get("/healthz").json()["queue"] == {"queued": 0, "running": 0, "waiting": 0}


def test_a_plan_waits_for_approval_and_runs_once_approved(serve_app: Any, twin_payload: dict[str, Any]) -> None:
    client = serve_app(approval="always")
    incident = client.post("/api/v1/alerts", json=twin_payload).json()["incidents"][0]["id"]
    view = until(lambda: (v := client.get(f"/api/v1/incidents/{incident}").json())["state"] == "waiting" and v,
                 what="a plan waiting for approval")
    assert view["pending"]["actions"][0]["kubectl"].startswith("kubectl scale deployment/rate")
    assert view["approve_with"] == f"POST /api/v1/incidents/{incident}/approval"
    assert 'stratus_queue_depth{state="waiting"} 1.0' in client.get("/metrics").text

    bad = client.post(f"/api/v1/incidents/{incident}/approval", json={"decision": "maybe"})
    assert bad.status_code == 422 and "decision" in bad.json()["error"]
    ok = client.post(f"/api/v1/incidents/{incident}/approval", json={"decision": "approve"})
    assert ok.status_code == 202
    view = _done(client, incident)
    assert view["outcome"] == "resolved" and [t["verdict"] for t in view["transactions"]] == ["commit"]
    late = client.post(f"/api/v1/incidents/{incident}/approval", json={"decision": "approve"})
    assert late.status_code == 409 and "done" in late.json()["error"]
    assert client.post("/api/v1/incidents/inc-nope/approval", json={"decision": "reject"}).status_code == 404


def test_a_rejected_plan_is_not_applied(serve_app: Any, twin_payload: dict[str, Any]) -> None:
    client = serve_app(approval="always")
    incident = client.post("/api/v1/alerts", json=twin_payload).json()["incidents"][0]["id"]
    until(lambda: client.get(f"/api/v1/incidents/{incident}").json()["state"] == "waiting", what="waiting")
    assert client.post(f"/api/v1/incidents/{incident}/approval", json={"decision": "reject"}).status_code == 202
    view = until(lambda: (v := client.get(f"/api/v1/incidents/{incident}").json())["state"] in ("waiting", "done")
                 and v["runs"] >= 2 and v, what="the rejected plan handled")
    first = view["transactions"][0]
    assert first["status"] == "refused" and "rejected" in first["verdict_reason"]
    assert first["results"] == []


def test_a_token_guards_every_route_but_healthz(serve_app: Any, twin_payload: dict[str, Any]) -> None:
    client = serve_app(token=TOKEN)
    missing = client.post("/api/v1/alerts", json=twin_payload)
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = client.get("/api/v1/incidents", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "not accepted" in wrong.json()["error"]
    assert client.get("/metrics").status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/incidents").status_code == 401
    ok = client.post("/api/v1/alerts", json=twin_payload, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 202
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'stratus_webhook_payloads_total{result="unauthorized"} 4.0' in metrics
    assert 'stratus_webhook_payloads_total{result="accepted"} 1.0' in metrics
