"""Address analyzer: env values and ConfigMap values that name a Service (``host``, ``host:port``, a
URL, a ``svc.ns.svc.cluster.local`` name) resolved against the namespace's Services and their ports.

Values come from literal env, from ``configMapKeyRef`` and ``envFrom`` ConfigMaps, and from ConfigMap
files (any token ``name:port`` whose name is a Service). Secret-sourced values are never read, so an
address kept in a Secret is not checked. Which names count as addresses is data (``data/addresses.yaml``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from stratus.state import Finding
from stratus.tools.analyzers.match import containers, pod_templates
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

_DATA = yaml.safe_load((Path(__file__).parent / "data" / "addresses.yaml").read_text())
SUFFIXES: tuple[str, ...] = tuple(_DATA["address_var_suffixes"])
IGNORED: frozenset[str] = frozenset(_DATA["ignored_hosts"])
CLUSTER_SUFFIXES: tuple[str, ...] = tuple(_DATA["cluster_suffixes"])
SCHEME_PORTS: dict[str, int] = dict(_DATA["scheme_ports"])
_TOKEN = re.compile(r"(?<![\w.-])([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9-]+)*):(\d{2,5})\b")
MAX_FILE_CHARS = 20_000


def parse_address(value: str) -> tuple[str, int | None] | None:
    """``(host, port)`` from ``host``, ``host:port`` or a URL; None when the value is not one address."""
    value = value.strip()
    if not value or any(ch in value for ch in " ,;") or value.startswith("/"):
        return None
    if "://" in value:
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            return None
        host = parts.hostname or ""
        return (host, port or SCHEME_PORTS.get(parts.scheme)) if host else None
    host, sep, digits = value.rpartition(":")
    if sep and digits.isdigit():
        return host, int(digits)
    return (value, None) if re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", value) else None


def service_of_host(host: str, namespace: str) -> tuple[str, bool]:
    """``(service name, certainly in-cluster)`` for a host; names of other namespaces give ``("", True)``."""
    if host.endswith(".cluster.local"):
        host = host[: -len(".cluster.local")]
    if host.endswith(".svc"):
        host = host[: -len(".svc")]
        name, _, ns = host.partition(".")
        return (name, True) if ns in ("", namespace) else ("", True)
    name, dot, rest = host.partition(".")
    if dot:
        return (name, True) if rest == namespace else ("", False)
    return name, False


class _Checker:
    def __init__(self, v: View) -> None:
        self.v = v
        self.ports = {s["metadata"]["name"]: [int(p["port"]) for p in (s.get("spec") or {}).get("ports") or []]
                      for s in v.services}
        self.out: list[Finding] = []

    def check(self, owner: str, ref: str, where: str, value: str, named_address: bool, **source: Any) -> None:
        parsed = parse_address(value)
        if parsed is None:
            return
        host, port = parsed
        if host in IGNORED or re.fullmatch(r"[\d.]+", host):
            return
        name, certain = service_of_host(host, self.v.namespace)
        if not name:
            return
        if name not in self.ports:
            if "Service" in self.v.truncated:
                return
            if certain or (named_address and port is not None and "." not in host):
                self.out.append(finding("addresses", ref, f"{ref} {where}={value} names host {host}, but the namespace "
                                                          f"has no Service {name}", owner, "AddressUnresolved",
                                        "critical" if certain else "warning", [f"{ref.lower()}:{where}"],
                                        field=where, host=host, port=port, **source))
        elif port is not None and self.ports[name] and port not in self.ports[name]:
            self.out.append(finding("addresses", ref, f"{ref} {where}={value}: Service {name} exposes ports "
                                                      f"{sorted(self.ports[name])}, not {port}",
                                    owner, "AddressPortNotServed", "critical", [f"{ref.lower()}:{where}"],
                                    field=where, host=host, port=port, service_ports=sorted(self.ports[name]), **source))

    def scan_file(self, owner: str, ref: str, where: str, text: str, configmap: str) -> None:
        for m in _TOKEN.finditer(text[:MAX_FILE_CHARS]):
            host = m.group(1)
            name, certain = service_of_host(host, self.v.namespace)
            if name in self.ports or certain:
                self.check(owner, ref, where, f"{host}:{m.group(4)}", False, configmap=configmap)


def _is_address_var(name: str) -> bool:
    return name.upper().endswith(SUFFIXES)


def _cm_values(tmpl: dict[str, Any], cms: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """``(field, variable, value, ConfigMap)`` for env values a template takes from ConfigMaps."""
    out = []
    for c in containers(tmpl.get("spec") or {}):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef") or {}
            data = (cms.get(ref.get("name", "")) or {}).get("data") or {}
            if ref.get("key") in data:
                out.append((f"env.{e['name']} (ConfigMap {ref['name']})", e["name"], str(data[ref["key"]]), ref["name"]))
        for ef in c.get("envFrom") or []:
            cm = (ef.get("configMapRef") or {}).get("name", "")
            for k, val in ((cms.get(cm) or {}).get("data") or {}).items():
                out.append((f"envFrom {cm}.{k}", f"{ef.get('prefix', '')}{k}", str(val), cm))
    return out


def named_ports(v: View) -> dict[str, set[int]]:
    """Ports the namespace's pod templates name for each Service, in literal env and ConfigMap-sourced
    values (what clients expect a Service to expose)."""
    cms = {c["metadata"]["name"]: c for c in v.objects("ConfigMap")}
    out: dict[str, set[int]] = {}
    for _kind, _owner, tmpl in pod_templates(v):
        values = [str(e["value"]) for c in containers(tmpl.get("spec") or {}) for e in c.get("env") or []
                  if "value" in e] + [val for _w, _var, val, _cm in _cm_values(tmpl, cms)]
        for value in values:
            parsed = parse_address(value)
            if parsed is not None and parsed[1] is not None:
                name, _certain = service_of_host(parsed[0], v.namespace)
                out.setdefault(name, set()).add(parsed[1])
    return out


@analyzer("addresses")
def addresses(v: View) -> list[Finding]:
    chk = _Checker(v)
    cms = {c["metadata"]["name"]: c for c in v.objects("ConfigMap")}
    mounted: dict[str, tuple[str, str]] = {}
    for kind, owner, tmpl in pod_templates(v):
        ref = f"{kind}/{owner}"
        for c in containers(tmpl.get("spec") or {}):
            for e in c.get("env") or []:
                if "value" in e:
                    chk.check(owner, ref, f"env.{e['name']}", str(e["value"]), _is_address_var(e["name"]))
        for where, var, val, cm in _cm_values(tmpl, cms):
            chk.check(owner, ref, where, val, _is_address_var(var), configmap=cm)
        for vol in (tmpl.get("spec") or {}).get("volumes") or []:
            if "configMap" in vol:
                mounted.setdefault(vol["configMap"].get("name", ""), (owner, ref))
    for cm, (owner, ref) in sorted(mounted.items()):
        for key, text in ((cms.get(cm) or {}).get("data") or {}).items():
            chk.scan_file(owner, ref, f"ConfigMap {cm} file {key}", str(text), cm)
    return chk.out
