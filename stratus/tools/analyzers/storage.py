"""Storage analyzer: PersistentVolumeClaims that stay Pending or are Lost, with the provisioner's reason
from their events, and claims naming a StorageClass that does not exist (when StorageClasses can be read).

``ClaimUnusable`` names the workload whose pod template mounts a claim that is missing or not Bound
(its pods cannot be scheduled until the claim binds), with the claim and its phase as facts: the
generic storage plan (``stratus.policies.generic_capacity``) starts from it.
"""

from __future__ import annotations

from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.match import pod_templates
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("storage")
def storage(v: View) -> list[Finding]:
    out = []
    claims = v.objects("PersistentVolumeClaim")
    classes = {c["metadata"]["name"] for c in v.objects("StorageClass")} if claims else set()
    # an empty list proves nothing (a backend that does not model StorageClasses reads as empty); a Pending
    # claim's provisioner event still names the missing class
    classes_known = bool(classes) and "StorageClass" not in v.truncated
    for pvc in claims:
        name, spec = pvc["metadata"]["name"], pvc.get("spec") or {}
        phase = (pvc.get("status") or {}).get("phase")
        ref = f"PersistentVolumeClaim/{name}"
        if phase in ("Pending", "Lost"):
            why = next((e.get("message", "") for e in reversed(v.events)
                        if (e.get("involvedObject") or {}).get("name") == name and e.get("type") == "Warning"), "")
            out.append(finding("storage", ref, f"PersistentVolumeClaim {name} is {phase}"
                                               f"{': ' + why[:200] if why else ''}", name, f"Claim{phase}", "warning",
                               [f"persistentvolumeclaim:{name}:status"], phase=phase, reason=why[:300]))
        sc = spec.get("storageClassName")
        if sc and classes_known and sc not in classes:
            out.append(finding("storage", ref, f"PersistentVolumeClaim {name} asks for StorageClass {sc}, which "
                                               f"does not exist", name, "StorageClassMissing", "warning",
                               [f"persistentvolumeclaim:{name}:spec.storageClassName"], storage_class=sc))
    return out + unusable_claims(v, {c["metadata"]["name"]: c for c in claims})


def unusable_claims(v: View, claims: dict[str, dict[str, Any]]) -> list[Finding]:
    """Workloads mounting a claim that is missing (when the claim list is complete) or not Bound."""
    out = []
    for kind, owner, tmpl in pod_templates(v):
        for vol in (tmpl.get("spec") or {}).get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = claims.get(claim)
            if pvc is None and ("PersistentVolumeClaim" in v.truncated or "PersistentVolumeClaim" in v.unreadable):
                continue
            phase = "missing" if pvc is None else str((pvc.get("status") or {}).get("phase") or "Pending")
            if phase == "Bound":
                continue
            out.append(finding("storage", f"{kind}/{owner}", f"{kind} {owner} mounts PersistentVolumeClaim {claim}, "
                               f"which is {phase}: its pods cannot start", owner, "ClaimUnusable", "critical",
                               [f"persistentvolumeclaim:{claim}"], kind="PersistentVolumeClaim", name=claim,
                               phase=phase, workload=owner))
    return out
