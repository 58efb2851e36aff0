"""Service wiring analyzer: each Service selector matched by running pods' labels, each targetPort (a
number or a port name) exposed by the selected pods' containers, and each probe aimed at a port its
container declares.

k8sgpt stops at "no endpoints"; this says why: which label no pod carries, which port no container
opens. A Service without a selector (endpoints managed by hand) is left alone.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.match import exposed_ports, pod_templates, resolve_port, selector_matches
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

PROBES = ("readinessProbe", "livenessProbe", "startupProbe")


def _near_miss(selector: dict[str, str], templates: list[tuple[str, str, dict[str, Any]]]) -> str:
    """The workload whose labels come closest to the selector (fewest differing keys, then the most
    similar values), with what differs."""
    best: tuple[int, float, str] | None = None
    for kind, name, tmpl in templates:
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        diff = [k for k, val in selector.items() if labels.get(k) != val]
        if not diff or len(diff) == len(selector) and not any(k in labels for k in diff):
            continue
        likeness = sum(SequenceMatcher(None, str(labels.get(k, "")), str(selector[k])).ratio() for k in diff)
        key = (len(diff), -likeness, f"{kind} {name} has " + ", ".join(
            f"{k}={labels.get(k, '<unset>')} (wants {selector[k]})" for k in diff))
        if best is None or key < best:
            best = key
    return best[2] if best else ""


def _service_checks(v: View, templates: list[tuple[str, str, dict[str, Any]]]) -> list[Finding]:
    out = []
    for s in v.services:
        name, spec = s["metadata"]["name"], s.get("spec") or {}
        sel = spec.get("selector")
        if not sel or spec.get("type") == "ExternalName":
            continue
        ref = f"Service/{name}"
        pods = [p for p in v.pods if selector_matches(p["metadata"].get("labels"), sel)
                and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
        owners = [t for t in templates if selector_matches((t[2].get("metadata") or {}).get("labels"), sel)]
        if not pods and not owners and not {"Pod", "Deployment"} & v.truncated:
            hint = _near_miss(sel, templates)
            out.append(finding("references", ref, f"Service {name} selects {sel} but no pod or workload carries "
                                                  f"those labels{': ' + hint if hint else ''}", v.service_component(name),
                               "SelectorMatchesNoPods", "critical", [f"service:{name}:spec.selector"],
                               selector=sel, closest=hint))
            continue
        specs = [p.get("spec") or {} for p in pods] or [t[2].get("spec") or {} for t in owners]
        for i, sp in enumerate(spec.get("ports") or []):
            tp = sp.get("targetPort", sp.get("port"))
            unexposed = [j for j, ps in enumerate(specs) if resolve_port(tp, *exposed_ports(ps)) is None
                         and exposed_ports(ps)[0]]
            if unexposed:
                numbers, named = exposed_ports(specs[unexposed[0]])
                out.append(finding("references", ref, f"Service {name} port {sp.get('port')} targets {tp!r}, which "
                                                      f"{len(unexposed)}/{len(specs)} selected pod(s) do not expose "
                                                      f"(ports {sorted(numbers)}, names {sorted(named)})",
                                   v.service_component(name), "TargetPortNotExposed", "warning",
                                   [f"service:{name}:spec.ports[{i}]"], target_port=tp, ports=sorted(numbers),
                                   port_names=sorted(named)))
    return out


def _probe_checks(templates: list[tuple[str, str, dict[str, Any]]]) -> list[Finding]:
    out = []
    for kind, owner, tmpl in templates:
        spec = tmpl.get("spec") or {}
        for c in spec.get("containers") or []:
            numbers, named = exposed_ports({"containers": [c]})
            for probe in PROBES:
                handler = (c.get(probe) or {}).get("httpGet") or (c.get(probe) or {}).get("tcpSocket") \
                    or (c.get(probe) or {}).get("grpc") or {}
                port = handler.get("port")
                if port is None:
                    continue
                named_missing = isinstance(port, str) and not port.isdigit() and port not in named
                number_missing = numbers and resolve_port(port, numbers, named) is None and not named_missing
                if named_missing or number_missing:
                    out.append(finding("references", f"{kind}/{owner}", f"{kind} {owner} container {c.get('name')} "
                                                                      f"{probe} checks port {port!r}, but the container "
                                                                      f"declares {sorted(numbers)} {sorted(named)}",
                                       owner, "ProbePortNotDeclared", "warning",
                                       [f"{kind.lower()}:{owner}:{c.get('name')}.{probe}"], probe=probe, port=port,
                                       container=c.get("name"), ports=sorted(numbers)))
    return out


@analyzer("references")
def references(v: View) -> list[Finding]:
    templates = list(pod_templates(v))
    return _service_checks(v, templates) + _probe_checks(templates)
