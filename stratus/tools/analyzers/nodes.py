"""Node analyzer: nodes that are not Ready or report pressure, cordoned nodes, and NoSchedule/NoExecute
taints that none of the namespace's pod templates tolerate (informational: they only matter when no
other node fits, which the scheduling analyzer reports)."""

from __future__ import annotations

from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.match import pod_templates
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """Whether a pod's tolerations cover a node taint (the scheduler's matching rules)."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint.get("key")):
            return True
        if t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


@analyzer("nodes")
def nodes(v: View) -> list[Finding]:
    out = []
    tols = [(t.get("spec") or {}).get("tolerations") or [] for _k, _n, t in pod_templates(v)]
    for n in v.nodes:
        name, spec = n["metadata"]["name"], n.get("spec") or {}
        ref = f"Node/{name}"
        for cond in (n.get("status") or {}).get("conditions") or []:
            bad = (cond.get("type") == "Ready" and cond.get("status") != "True") or \
                  (cond.get("type") in PRESSURE and cond.get("status") == "True")
            if bad:
                out.append(finding("nodes", ref, f"Node {name} {cond['type']}={cond.get('status')}: "
                                                 f"{cond.get('message', '')[:160]}", name, f"Node{cond['type']}",
                                   "warning", [f"node:{name}:status.conditions"], condition=cond["type"],
                                   status=cond.get("status")))
        if spec.get("unschedulable"):
            out.append(finding("nodes", ref, f"Node {name} is cordoned (unschedulable)", name, "NodeCordoned",
                               "warning", [f"node:{name}:spec.unschedulable"]))
        for taint in spec.get("taints") or []:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            if taint.get("key") == "node.kubernetes.io/unschedulable":
                continue  # the cordon, reported above
            if tols and not any(tolerates(t, taint) for t in tols):
                out.append(finding("nodes", ref, f"Node {name} has taint {taint.get('key')}={taint.get('value', '')}:"
                                                 f"{taint['effect']} that no workload here tolerates", name,
                                   "NodeTaintUntolerated", "info", [f"node:{name}:spec.taints"],
                                   taint={k: taint.get(k) for k in ("key", "value", "effect")}))
    return out
