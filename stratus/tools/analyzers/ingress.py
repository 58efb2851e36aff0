"""Ingress analyzer: every backend names a Service that exists and a port (number or name) it exposes,
and every TLS Secret exists (checked by name only, when Secrets can be listed)."""

from __future__ import annotations

from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


def _backends(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    if spec.get("defaultBackend"):
        out.append(("defaultBackend", spec["defaultBackend"]))
    for i, rule in enumerate(spec.get("rules") or []):
        for j, path in enumerate((rule.get("http") or {}).get("paths") or []):
            out.append((f"rules[{i}].paths[{j}]", path.get("backend") or {}))
    return out


@analyzer("ingress")
def ingress(v: View) -> list[Finding]:
    out = []
    services = {s["metadata"]["name"]: s for s in v.services}
    for ing in v.objects("Ingress"):
        name, spec = ing["metadata"]["name"], ing.get("spec") or {}
        ref = f"Ingress/{name}"
        for where, backend in _backends(spec):
            svc = backend.get("service") or {}
            if not svc:
                continue
            sname, port = svc.get("name", ""), svc.get("port") or {}
            if sname not in services:
                if "Service" not in v.truncated:  # past the list limit, absence proves nothing
                    out.append(finding("ingress", ref, f"Ingress {name} {where} routes to Service {sname}, which "
                                                       f"does not exist", sname, "IngressServiceMissing", "critical",
                                       [f"ingress:{name}:{where}"], service=sname, field=where))
                continue
            sports = services[sname].get("spec", {}).get("ports") or []
            if "number" in port and int(port["number"]) not in {int(p["port"]) for p in sports}:
                bad = port["number"]
            elif "name" in port and port["name"] not in {p.get("name") for p in sports}:
                bad = port["name"]
            else:
                continue
            out.append(finding("ingress", ref, f"Ingress {name} {where} uses port {bad!r} of Service {sname}, which "
                                               f"exposes {[p.get('name') or p['port'] for p in sports]}",
                               v.service_component(sname), "IngressPortMissing", "critical",
                               [f"ingress:{name}:{where}"], service=sname, port=bad))
        secrets = {s["metadata"]["name"] for s in v.objects("Secret", names_only=True)}
        for tls in spec.get("tls") or []:
            sec = tls.get("secretName")
            if sec and sec not in secrets and "Secret" not in v.unreadable and "Secret" not in v.truncated:
                out.append(finding("ingress", ref, f"Ingress {name} TLS uses Secret {sec}, which does not exist",
                                   None, "IngressTLSSecretMissing", "warning", [f"ingress:{name}:spec.tls"], secret=sec))
    return out
