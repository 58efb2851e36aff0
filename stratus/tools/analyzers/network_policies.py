"""NetworkPolicy analyzer: which Deployments a policy denies or restricts ingress to, and policies that
select no pod at all."""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.match import selector_matches
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("policies")
def policies(v: View) -> list[Finding]:
    out = []
    for pol in v.cluster.list("NetworkPolicy", v.namespace):
        if pol.get("kind") == "Omitted":
            continue
        spec = pol.get("spec", {})
        labels = (spec.get("podSelector") or {}).get("matchLabels") or {}
        targets = [d["metadata"]["name"] for d in v.deployments
                   if all(d["spec"]["template"].get("metadata", {}).get("labels", {}).get(k) == val
                          for k, val in labels.items())]
        if not targets and not any(selector_matches(p["metadata"].get("labels"), spec.get("podSelector") or {})
                                   for p in v.pods):
            out.append(finding("policies", f"NetworkPolicy/{pol['metadata']['name']}",
                               f"NetworkPolicy {pol['metadata']['name']} selects no pod", None, "PolicySelectsNoPods",
                               "info", [f"networkpolicy:{pol['metadata']['name']}:spec.podSelector"]))
        deny_all = "Ingress" in (spec.get("policyTypes") or ["Ingress"]) and not spec.get("ingress")
        for t in targets:
            out.append(finding("policies", f"NetworkPolicy/{pol['metadata']['name']}",
                               f"NetworkPolicy {pol['metadata']['name']} {'denies all ingress to' if deny_all else 'restricts ingress to'} {t}",
                               t, "IngressDenied" if deny_all else "IngressRestricted", "critical" if deny_all else "info",
                               [f"networkpolicy:{pol['metadata']['name']}"], policy=pol["metadata"]["name"]))
    return out
