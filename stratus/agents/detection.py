"""Detection agent: confirms from live telemetry that the alerts describe a real, open incident.

Read-only. It measures the health baseline at detection time (H over the window since the symptom
began, so healthy samples from before it do not flatter the baseline) and the noise level of H that sets
the TNR tolerance eps.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from stratus.agents.common import catch_up, cluster_of, context_of, policy_of
from stratus.context import Context
from stratus.policies.base import PolicyStop
from stratus.state import Finding, IncidentState, new_incident_id
from stratus.tools.analyzers import assess
from stratus.tools.health import IGNORED_ALERTS, alert_component, noise_eps, with_current_h


def detect(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    # input from Studio or a raw webhook may carry only alerts: fill in the incident's identity
    intake: dict[str, Any] = {}
    ns = state.get("namespace") or next(
        (a.get("labels", {}).get("namespace") for a in state.get("alerts") or [] if a.get("labels", {}).get("namespace")),
        "") or (ctx.namespaces[0] if ctx.namespaces else getattr(cluster, "namespace", "default"))
    if not state.get("namespace"):
        intake["namespace"] = ns
    if not state.get("incident_id"):
        intake["incident_id"] = new_incident_id()
    catch_up(ctx, cluster)
    health = with_current_h(assess(cluster, ctx, ns), cluster, ctx, ns)
    eps = noise_eps(cluster, ctx, ns)
    findings = []
    for a in state.get("alerts") or []:
        labels = a.get("labels", {})
        if labels.get("alertname") in IGNORED_ALERTS or a.get("status") == "resolved":
            continue
        findings.append(Finding(source="alerts", subject=f"Alert/{labels.get('alertname')}",
                                summary=f"received {labels.get('alertname')} for {alert_component(labels)}",
                                component=alert_component(labels), signal=labels.get("alertname", ""),
                                evidence=[f"alert:{a.get('fingerprint', '')}"]).model_dump())
    detected = bool(health.unhealthy) or bool(health.firing_alerts)
    extra: dict[str, Any] = {}
    policy = policy_of(ctx, state)
    try:
        opinion = policy.confirm(cluster, ns, state.get("alerts") or [], health.model_dump())
        if opinion is not None:
            # the policy can add an incident telemetry missed, never veto one it shows
            verdict, summary = opinion
            detected = detected or bool(verdict)
            extra["detection_summary"] = summary
    except PolicyStop as exc:
        extra["detection_summary"] = f"Detection agent skipped: {exc}"
    extra.update(policy.usage())
    point = {"t": health.at, "H": health.H, "phase": "detect", "tx": None, "verdict": None}
    return {**intake, **extra, "phase": "detect", "detected": detected, "health_detect": health.model_dump(),
            "health_baseline": health.model_dump(), "health_latest": health.model_dump(), "eps": eps,
            "findings": findings, "health_history": [point]}
