"""Reference analyzer: every object a pod template names exists (ConfigMaps, Secrets, keys, PVCs,
ServiceAccounts, image pull Secrets), and ConfigMaps nobody references (informational).

Secrets are only ever checked for existence, by name: their data is never read or kept. A backend that
refuses to list Secrets (the shipped RBAC grants no access to them) makes every Secret reference
"unverified", said once in an info finding that names the missing permission, never a false "missing".
"""

from __future__ import annotations

from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.match import containers, pod_templates
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

Ref = tuple[str, str, str, bool, str | None]
"""(kind, name, where in the template, optional, key) for one reference."""


def template_refs(tmpl: dict[str, Any]) -> list[Ref]:
    """Every named object a pod template refers to, with the field that names it."""
    spec = tmpl.get("spec") or {}
    out: list[Ref] = []
    for vol in spec.get("volumes") or []:
        where = f"volumes[{vol.get('name')}]"
        if "configMap" in vol:
            out.append(("ConfigMap", vol["configMap"].get("name", ""), where, bool(vol["configMap"].get("optional")), None))
        if "secret" in vol:
            out.append(("Secret", vol["secret"].get("secretName", ""), where, bool(vol["secret"].get("optional")), None))
        if "persistentVolumeClaim" in vol:
            out.append(("PersistentVolumeClaim", vol["persistentVolumeClaim"].get("claimName", ""), where, False, None))
        for src in (vol.get("projected") or {}).get("sources") or []:
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                if key in src:
                    out.append((kind, src[key].get("name", ""), where, bool(src[key].get("optional")), None))
    for c in containers(spec):
        cname = c.get("name", "")
        for ef in c.get("envFrom") or []:
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in ef:
                    out.append((kind, ef[key].get("name", ""), f"containers[{cname}].envFrom",
                                bool(ef[key].get("optional")), None))
        for e in c.get("env") or []:
            src = e.get("valueFrom") or {}
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in src:
                    out.append((kind, src[key].get("name", ""), f"containers[{cname}].env.{e.get('name')}",
                                bool(src[key].get("optional")), src[key].get("key")))
    if spec.get("serviceAccountName") not in (None, "", "default"):
        out.append(("ServiceAccount", spec["serviceAccountName"], "serviceAccountName", False, None))
    for ps in spec.get("imagePullSecrets") or []:
        out.append(("Secret", ps.get("name", ""), "imagePullSecrets", False, None))
    return out


def _cm_keys(cm: dict[str, Any]) -> set[str]:
    return set(cm.get("data") or {}) | set(cm.get("binaryData") or {})


@analyzer("config_refs")
def config_refs(v: View) -> list[Finding]:
    out: list[Finding] = []
    cms = {c["metadata"]["name"]: c for c in v.objects("ConfigMap")}
    present = {
        "ConfigMap": set(cms),
        "Secret": {s["metadata"]["name"] for s in v.objects("Secret", names_only=True)},
        "PersistentVolumeClaim": {p["metadata"]["name"] for p in v.objects("PersistentVolumeClaim")},
        "ServiceAccount": {s["metadata"]["name"] for s in v.objects("ServiceAccount")},
    }
    used: set[str] = set()
    unverified: dict[str, list[str]] = {}
    for kind, owner, tmpl in pod_templates(v):
        ref = f"{kind}/{owner}"
        for rkind, rname, where, optional, key in template_refs(tmpl):
            if rkind == "ConfigMap":
                used.add(rname)
            if rkind in v.unreadable or rkind in v.truncated:
                unverified.setdefault(rkind, []).append(f"{ref} {where} -> {rname}")
                continue
            if rname not in present[rkind]:
                sev = "info" if optional else "critical"
                out.append(finding("config_refs", ref, f"{ref} {where} refers to {rkind} {rname}, which does not "
                                                       f"exist{' (optional)' if optional else ''}", owner,
                                   f"Missing{rkind}", sev, [f"{kind.lower()}:{owner}:{where}"],
                                   kind=rkind, name=rname, field=where, optional=optional))
            elif rkind == "ConfigMap" and key and key not in _cm_keys(cms[rname]):
                out.append(finding("config_refs", ref, f"{ref} {where} reads key {key!r} of ConfigMap {rname}, which "
                                                       f"has keys {sorted(_cm_keys(cms[rname]))[:10]}", owner,
                                   "MissingConfigMapKey", "info" if optional else "critical",
                                   [f"{kind.lower()}:{owner}:{where}"], name=rname, key=key, field=where))
    for rkind, refs in unverified.items():
        reason = v.unreadable.get(rkind, f"more than the list limit of {rkind} objects")
        out.append(finding("config_refs", f"{rkind}/*", f"{len(refs)} {rkind} reference(s) not verified: "
                                                        f"{reason[:200]}", None, "ReferencesUnverified", "info",
                           [f"{rkind.lower()}:list"], kind=rkind, references=refs[:10], reason=reason[:300]))
    if {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"} & v.truncated:
        return out  # some templates were not read: "unused" would be a guess
    for name in sorted(set(cms) - used - {"kube-root-ca.crt"}):  # the API server adds that one everywhere
        out.append(finding("config_refs", f"ConfigMap/{name}", f"ConfigMap {name} is not used by any pod template",
                           None, "UnusedConfigMap", "info", [f"configmap:{name}"], name=name))
    return out
