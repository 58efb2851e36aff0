"""Alert analyzer: firing alerts (Watchdog and InfoInhibitor aside), attributed to a component."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View
from stratus.tools.health import alert_component


@analyzer("alerts")
def alerts(v: View) -> list[Finding]:
    out = []
    for a in v.alerts:
        labels = a.get("labels", {})
        if labels.get("alertname") in ("Watchdog", "InfoInhibitor"):
            continue
        comp = alert_component(labels)
        pod = next((p for p in v.pods if p["metadata"]["name"] == labels.get("pod")), None)
        if pod:
            comp = v.deployment_of_pod(pod)
        out.append(finding("alerts", f"Alert/{labels.get('alertname')}",
                           f"{labels.get('alertname')} firing for {comp}: "
                           f"{a.get('annotations', {}).get('summary', '')}", comp, labels.get("alertname", ""),
                           labels.get("severity", "warning") if labels.get("severity") in ("info", "warning", "critical")
                           else "warning", [f"alert:{a.get('fingerprint', '')}"]))
    return out
