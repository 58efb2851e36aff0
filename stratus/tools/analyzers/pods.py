"""Pod analyzer: scheduling failures, waiting containers, OOM kills, start errors, running-but-not-Ready."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("pods")
def pods(v: View) -> list[Finding]:
    out = []
    for p in v.pods:
        name, comp = p["metadata"]["name"], v.deployment_of_pod(p)
        st = p.get("status", {})
        ref = f"Pod/{name}"
        for cond in st.get("conditions", []):
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                out.append(finding("pods", ref, f"{name} cannot be scheduled: {cond.get('message', '')}", comp,
                                   "Unschedulable", "critical", [f"pod:{name}:conditions"], message=cond.get("message", "")))
        for cs in st.get("containerStatuses", []):
            waiting = cs.get("state", {}).get("waiting")
            last = (cs.get("lastState") or {}).get("terminated")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                out.append(finding("pods", ref, f"{name}/{cs['name']} waiting: {waiting['reason']} "
                                                f"{waiting.get('message', '')[:160]}", comp, waiting["reason"], "critical",
                                   [f"pod:{name}:status"], restarts=cs.get("restartCount", 0)))
            if last and last.get("reason") == "OOMKilled":
                out.append(finding("pods", ref, f"{name}/{cs['name']} was OOMKilled (exit 137)", comp, "OOMKilled",
                                   "critical", [f"pod:{name}:lastState"]))
            elif last and last.get("exitCode") == 128:
                out.append(finding("pods", ref, f"{name}/{cs['name']} failed to start (exit 128)", comp, "StartError",
                                   "critical", [f"pod:{name}:lastState"]))
            if "running" in cs.get("state", {}) and not cs.get("ready"):
                out.append(finding("pods", ref, f"{name}/{cs['name']} is running but not Ready", comp, "NotReady",
                                   "warning", [f"pod:{name}:status"]))
    return out
