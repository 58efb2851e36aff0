"""PodDisruptionBudget analyzer: budgets that select no pod, and budgets that allow no voluntary
disruption at all (a drain or node upgrade then blocks forever). The kind is read only when the
backend serves it; otherwise this analyzer reports nothing."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.match import selector_matches, workload_of_pod
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("disruption")
def disruption(v: View) -> list[Finding]:
    out = []
    for pdb in v.objects("PodDisruptionBudget"):
        name, spec, st = pdb["metadata"]["name"], pdb.get("spec") or {}, pdb.get("status") or {}
        ref = f"PodDisruptionBudget/{name}"
        pods = [p for p in v.pods if selector_matches(p["metadata"].get("labels"), spec.get("selector"))]
        if not pods:
            out.append(finding("disruption", ref, f"PodDisruptionBudget {name} selects no pod", None,
                               "PDBSelectsNothing", "info", [f"poddisruptionbudget:{name}:spec.selector"]))
            continue
        owner = workload_of_pod(v, pods[0])
        max_unavail = spec.get("maxUnavailable")
        min_avail = spec.get("minAvailable")
        blocks = max_unavail in (0, "0", "0%") or min_avail == "100%" or \
            (isinstance(min_avail, int) and min_avail >= len(pods))
        if blocks or ("disruptionsAllowed" in st and int(st["disruptionsAllowed"]) == 0
                      and int(st.get("currentHealthy", 0)) >= int(st.get("desiredHealthy", 0)) > 0):
            out.append(finding("disruption", ref, f"PodDisruptionBudget {name} allows no voluntary disruption of "
                                                  f"{owner} ({len(pods)} pod(s); minAvailable={min_avail}, "
                                                  f"maxUnavailable={max_unavail})", owner, "PDBBlocksDisruption",
                               "info", [f"poddisruptionbudget:{name}:spec"], pods=len(pods)))
    return out
