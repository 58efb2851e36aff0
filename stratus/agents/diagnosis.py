"""Diagnosis agent: findings from every analyzer, ranked root-cause hypotheses. Read-only."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from stratus.agents.closing import hold_baseline, leftover_hypotheses
from stratus.agents.common import catch_up, cluster_of, context_of, policy_of
from stratus.context import Context
from stratus.policies.base import PolicyStop
from stratus.state import IncidentState

MAX_FINDINGS_PER_ROUND = 40
MAX_HYPOTHESES = 12


def diagnose(state: IncidentState, runtime: Runtime[Context]) -> dict[str, Any]:
    ctx = context_of(runtime)
    cluster = cluster_of(ctx)
    catch_up(ctx, cluster)
    hold_baseline(ctx, cluster, state)
    left = leftover_hypotheses(state)
    if left is not None:  # no symptom is left, only changes that still take something away
        return {"phase": "diagnose", "hypotheses": [h.model_dump() for h in left[:MAX_HYPOTHESES]]}
    policy = policy_of(ctx, state)
    try:
        findings, hypotheses, _view = policy.diagnose(cluster, state["namespace"],
                                                      reflections=list(state.get("reflections") or []))
    except PolicyStop as exc:
        return {"phase": "diagnose", "hypotheses": [], "escalation_reason": str(exc), **policy.usage()}
    order = {"critical": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order.get(f.severity, 3))
    return {"phase": "diagnose", "findings": [f.model_dump() for f in findings[:MAX_FINDINGS_PER_ROUND]],
            "hypotheses": [h.model_dump() for h in hypotheses[:MAX_HYPOTHESES]], **policy.usage()}
