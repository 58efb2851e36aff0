"""Leftovers: changes from around an incident that still take something away once its symptoms are gone.

A fault with no traffic to show it leaves U empty: a node tainted or cordoned under pods that were
already running, a workload scaled to zero or deleted that nothing calls right now, a quota that will
refuse the next pod, a Service whose selector matches nothing. Calling the incident resolved at that
point leaves the fault for the next rollout to find. So before STRATUS reports "resolved", it asks the
change journal what changed since shortly before the incident, is still in place and was never seen
healthy, and takes capacity away:

- a workload, Service, ConfigMap, Secret or claim deleted and still gone;
- a workload's replicas lowered to 0 and still 0;
- a node cordoned or given a taint that repels pods, and still so;
- a ResourceQuota or LimitRange created or changed, or a NetworkPolicy that now denies all traffic in a
  direction it governs (one with allow rules needs the traffic to judge, which a symptom would show);
- a Service changed that now has no endpoints.

Routine work is never a leftover: a new image, one more replica or a configuration edit takes nothing
away, and a change that stayed healthy for the journal's dwell is settled and out of the question. Each
leftover becomes a ``recent_change`` hypothesis whose plan (the generic revert) runs as a transaction
like any other, so TNR still undoes a revert that hurts; one that cannot be undone is escalated by name.
"""

from __future__ import annotations

from typing import Any

from stratus.state import Hypothesis
from stratus.tools.analyzers.changes import LOOKBACK_S, WORKLOADS, _components, _no_endpoints
from stratus.tools.analyzers.view import View

GONE_KINDS = (*WORKLOADS, "Service", "ConfigMap", "Secret", "PersistentVolumeClaim")
"""Kinds whose deletion takes away what others use."""
RESTRICTING_KINDS = ("NetworkPolicy", "ResourceQuota", "LimitRange")
"""Kinds whose creation or change restricts what pods may do or reach."""
REPELLING = ("NoSchedule", "NoExecute")
CONFIDENCE = 0.5
"""Leftovers explain no symptom: they are checked last, after every symptom is gone."""


UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def node_drift(journal: Any, node: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]] | None:
    """How a node differs from its last healthy version: whether it was cordoned since, and the taints it
    gained (not the taint a cordon adds by itself). None when the journal never saw it healthy."""
    healthy = journal.last_healthy("Node", node["metadata"]["name"], None) if journal is not None else None
    if healthy is None:
        return None
    spec, old = node.get("spec") or {}, healthy.get("spec") or {}
    had = {(t.get("key"), t.get("effect")) for t in old.get("taints") or []}
    new = [t for t in spec.get("taints") or [] if (t.get("key"), t.get("effect")) not in had
           and t.get("key") != UNSCHEDULABLE_TAINT]
    return bool(spec.get("unschedulable") and not old.get("unschedulable")), new


def _node_restricted(v: View, name: str) -> str:
    cur = next((n for n in v.nodes if n["metadata"]["name"] == name), None)
    drift = node_drift(v.journal, cur) if cur is not None else None
    if drift is None:
        return ""
    cordoned, gained = drift
    if cordoned:
        return f"Node {name} is still cordoned"
    new = sorted(str(t.get("key")) for t in gained if t.get("effect") in REPELLING)
    return f"Node {name} still has the taint {', '.join(new)}" if new else ""


def denies_all(v: View, name: str) -> bool:
    """Whether a NetworkPolicy shuts its pods off entirely in a direction it governs (no rule at all)."""
    pol = next((p for p in v.objects("NetworkPolicy") if p["metadata"]["name"] == name), None)
    if pol is None:
        return False
    spec = pol.get("spec") or {}
    types = spec.get("policyTypes") or ["Ingress"]
    return ("Ingress" in types and not spec.get("ingress")) or ("Egress" in types and not spec.get("egress"))


def _replicas(m: dict[str, Any] | None) -> int | None:
    if m is None:
        return None
    try:
        return int((m.get("spec") or {}).get("replicas", 1))
    except (TypeError, ValueError):
        return None


def _why(v: View, c: dict[str, Any]) -> str:
    """Why the change's result still takes something away ("" when it does not)."""
    j, kind, name, ns = v.journal, c["kind"], c["name"], c["namespace"]
    if kind == "Node":
        return _node_restricted(v, name)
    if j.current_is_healthy(kind, name, ns):
        return ""
    if j.deleted(kind, name, ns):
        return f"{kind} {name} was deleted and is still gone" if kind in GONE_KINDS else ""
    if kind == "NetworkPolicy" and not denies_all(v, name):
        return ""  # an allow rule, or one whose reach needs the traffic to judge: not a leftover by itself
    if kind in RESTRICTING_KINDS:
        return f"{kind} {name} was {'created' if j.last_healthy(kind, name, ns) is None else 'changed'} and is still in place"
    if kind in WORKLOADS:
        cur = next((d for d in (v.deployments if kind == "Deployment" else v.objects(kind))
                    if d["metadata"]["name"] == name), None)
        was = _replicas(j.last_healthy(kind, name, ns))
        return f"{kind} {name} was scaled to 0 (from {was}) and still is" if was and _replicas(cur) == 0 else ""
    if kind == "Service" and _no_endpoints(v, name):
        return f"Service {name} was changed and has no endpoints"
    return ""


def leftovers(v: View, detected_at: float) -> list[dict[str, Any]]:
    """Changes since ``LOOKBACK_S`` before detection whose result still takes something away.

    Each entry: ``kind``, ``name``, ``component`` (what it served; a node's own name), ``why`` and the
    change's ``id``; one per object, newest change first. STRATUS's own changes are left out."""
    j = v.journal
    if j is None:
        return []
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for c in j.unsettled(detected_at - LOOKBACK_S, v.cluster.now(), absent_deletes=True):
        key = (c["kind"], c["name"])
        if key in seen or c["namespace"] not in (None, v.namespace):
            continue
        seen.add(key)
        if c.get("by_stratus"):
            continue
        why = _why(v, c)
        if not why:
            continue
        comps = [c["name"]] if c["kind"] == "Node" else _components(v, c, {})
        out.append({"kind": c["kind"], "name": c["name"], "component": (comps or [c["name"]])[0],
                    "why": why, "change": c["id"]})
    return out


def as_hypotheses(found: list[dict[str, Any]]) -> list[Hypothesis]:
    """One ``recent_change`` hypothesis per leftover, its object as the fact the generic revert acts on."""
    return [Hypothesis(component=f["component"], fault_class="recent_change", confidence=CONFIDENCE,
                       summary=f"{f['why']}, though every symptom is gone",
                       evidence=[f"journal:{f['change']}: {f['why']}"],
                       data={"facts": [{"kind": f["kind"], "name": f["name"], "change": f["change"]}]})
            for f in found]
