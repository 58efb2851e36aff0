"""Chaos analyzer: Chaos Mesh objects (kinds from ``stratus.cluster.kinds``) and the Deployments they act on."""

from __future__ import annotations

from stratus.cluster.kinds import CHAOS_KINDS
from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("chaos")
def chaos(v: View) -> list[Finding]:
    out = []
    for kind in CHAOS_KINDS:
        for ch in v.cluster.list(kind, v.namespace):
            if ch.get("kind") == "Omitted":
                continue
            sel = (ch.get("spec", {}).get("selector") or {}).get("labelSelectors") or {}
            targets = [d["metadata"]["name"] for d in v.deployments
                       if sel and all(d["spec"]["template"].get("metadata", {}).get("labels", {}).get(k) == val
                                      for k, val in sel.items())]
            for t in targets or [None]:
                out.append(finding("chaos", f"{kind}/{ch['metadata']['name']}",
                                   f"{kind} {ch['metadata']['name']} ({ch.get('spec', {}).get('action')}) acts on {t}",
                                   t, kind, "critical", [f"{kind.lower()}:{ch['metadata']['name']}"],
                                   kind=kind, name=ch["metadata"]["name"], action=ch.get("spec", {}).get("action")))
    return out
