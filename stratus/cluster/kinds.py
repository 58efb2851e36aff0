"""Kubernetes words, in one place: kinds with their API group, scope and kubectl aliases; chaos kinds;
the kinds that own a pod template. Loaded from ``data/kinds.yaml``; every layer reads them from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_DATA = yaml.safe_load((Path(__file__).parent / "data" / "kinds.yaml").read_text())

CHAOS_KINDS: tuple[str, ...] = tuple(_DATA["chaos_kinds"])
"""Chaos Mesh custom resources that act on pods while they exist."""

KINDS: dict[str, dict[str, Any]] = {
    **{k: {"group": v["group"], "namespaced": v["namespaced"], "aliases": list(v["aliases"])}
       for k, v in _DATA["kinds"].items()},
    **{k: {"group": "chaos-mesh.org", "namespaced": True, "aliases": [k.lower(), k.lower() + "s"]}
       for k in CHAOS_KINDS},
}
"""Canonical Kind -> {"group", "namespaced", "aliases"} (aliases are the lower-case resource names)."""

WORKLOAD_KINDS: frozenset[str] = frozenset(_DATA["workload_kinds"])
"""Workload controllers a user changes (Deployment, StatefulSet, DaemonSet)."""

POD_TEMPLATE_KINDS: frozenset[str] = frozenset(_DATA["pod_template_kinds"])
"""Every kind whose pod spec sits at ``spec.template.spec`` (the workloads plus ReplicaSet)."""

