"""HorizontalPodAutoscaler analyzer: a scale target that does not exist or sets no resource requests,
an autoscaler pinned at its maximum, and autoscalers that cannot compute a scale (ScalingActive or
AbleToScale False)."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("autoscaling")
def autoscaling(v: View) -> list[Finding]:
    out = []
    for hpa in v.objects("HorizontalPodAutoscaler"):
        name, spec, st = hpa["metadata"]["name"], hpa.get("spec") or {}, hpa.get("status") or {}
        ref = f"HorizontalPodAutoscaler/{name}"
        target = spec.get("scaleTargetRef") or {}
        kind, tname = target.get("kind", ""), target.get("name", "")
        objs = v.deployments if kind == "Deployment" else v.replicasets if kind == "ReplicaSet" else \
            v.objects(kind) if kind == "StatefulSet" else None
        if objs is not None and kind not in v.truncated and tname not in {o["metadata"]["name"] for o in objs}:
            out.append(finding("autoscaling", ref, f"HPA {name} scales {kind} {tname}, which does not exist", tname,
                               "HPATargetMissing", "warning", [f"horizontalpodautoscaler:{name}:spec.scaleTargetRef"],
                               kind=kind, target=tname))
            continue
        target_obj = next((o for o in objs or [] if o["metadata"]["name"] == tname), None)
        cs = ((target_obj or {}).get("spec", {}).get("template", {}).get("spec") or {}).get("containers") or []
        if cs and not any((c.get("resources") or {}).get("requests") for c in cs):
            out.append(finding("autoscaling", ref, f"HPA {name}: no container of {kind} {tname} sets resource "
                                                   f"requests, so utilization targets cannot be computed", tname,
                               "HPATargetNoRequests", "warning", [f"{kind.lower()}:{tname}:resources"]))
        mx = int(spec.get("maxReplicas", 0) or 0)
        cur = int(st.get("currentReplicas", 0) or 0)
        if mx and cur >= mx and int(st.get("desiredReplicas", cur) or cur) >= mx:
            out.append(finding("autoscaling", ref, f"HPA {name} runs {tname} at its maximum of {mx} replicas", tname,
                               "HPAAtMaxReplicas", "info", [f"horizontalpodautoscaler:{name}:status"], max=mx))
        for cond in st.get("conditions") or []:
            if cond.get("type") in ("ScalingActive", "AbleToScale") and cond.get("status") == "False":
                out.append(finding("autoscaling", ref, f"HPA {name} {cond['type']}=False: {cond.get('reason')}: "
                                                       f"{cond.get('message', '')[:160]}", tname, f"HPA{cond['type']}False",
                                   "warning", [f"horizontalpodautoscaler:{name}:status.conditions"],
                                   reason=cond.get("reason")))
    return out
