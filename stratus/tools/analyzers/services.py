"""Service analyzer: target ports no pod listens on, and Services without ready endpoints."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("services")
def services(v: View) -> list[Finding]:
    out = []
    for s in v.services:
        name = s["metadata"]["name"]
        comp = v.service_component(name)
        tmpl = v.template_of(comp)
        ports = set()
        if tmpl:
            ports = {int(p["containerPort"]) for c in tmpl["spec"].get("containers", []) for p in c.get("ports", [])}
        for i, sp in enumerate(s["spec"].get("ports", [])):
            tp = sp.get("targetPort", sp.get("port"))
            if ports and isinstance(tp, int) and tp not in ports:
                out.append(finding("services", f"Service/{name}", f"Service {name} port {sp.get('port')} targets "
                                                                 f"{tp}, but pods listen on {sorted(ports)}", name,
                                   "TargetPortMismatch", "critical", [f"service:{name}:spec.ports[{i}]"],
                                   index=i, target_port=tp, container_ports=sorted(ports)))
        ep = v.endpoints.get(name, {})
        ready = sum(len(ss.get("addresses") or []) for ss in ep.get("subsets") or [])
        if ready == 0:
            out.append(finding("services", f"Service/{name}", f"Service {name} has no ready endpoints", comp,
                               "NoEndpoints", "critical", [f"endpoints:{name}"]))
    return out
