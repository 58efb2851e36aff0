"""Event analyzer: Warning events, one finding per (object, reason), with probe and pull failures named."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View
from stratus.tools.health import component_of_pod


@analyzer("events")
def events(v: View) -> list[Finding]:
    out, seen = [], set()
    for e in v.events:
        if e.get("type") != "Warning":
            continue
        obj = e.get("involvedObject", {})
        key = (obj.get("name"), e.get("reason"))
        if key in seen:
            continue
        seen.add(key)
        comp = component_of_pod(obj.get("name", "")) if obj.get("kind") == "Pod" else obj.get("name")
        if obj.get("kind") == "Pod":
            pod = next((p for p in v.pods if p["metadata"]["name"] == obj.get("name")), None)
            if pod:
                comp = v.deployment_of_pod(pod)
        msg = e.get("message", "")
        signal = e.get("reason", "")
        if signal == "Failed" and "pull image" in msg:
            signal = "ImagePullFailed"
        elif signal == "Unhealthy" and msg.startswith("Readiness"):
            signal = "ReadinessProbeFailed"
        elif signal == "Unhealthy" and msg.startswith("Liveness"):
            signal = "LivenessProbeFailed"
        out.append(finding("events", f"{obj.get('kind')}/{obj.get('name')}", f"{e.get('reason')}: {msg[:200]}", comp,
                           signal, "warning", [f"event:{e['metadata']['name']}"], message=msg, count=e.get("count", 1)))
    return out
