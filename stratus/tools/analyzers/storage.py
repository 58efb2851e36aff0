"""Storage analyzer: PersistentVolumeClaims that stay Pending or are Lost, with the provisioner's reason
from their events, and claims naming a StorageClass that does not exist (when StorageClasses can be read).
"""

from __future__ import annotations

from stratus.state import Finding
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
    return out
