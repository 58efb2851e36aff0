"""Admission analyzer: namespace policies that keep a workload's pods from being created or running.

- ``QuotaRefusesPods``: a controller's ``FailedCreate`` event says a ResourceQuota refused its pods
  (``exceeded quota: <name>`` or ``failed quota: <name>: must specify ...``); the finding names the
  quota and the workload that owns the controller.
- ``LimitRangeDefaultOOM``: a container was OOM-killed with a memory limit its workload never set,
  equal to the default a LimitRange of the namespace hands out: the LimitRanger filled it in at
  admission, so the limit belongs to the LimitRange, not to the workload.

Each finding carries the policy object (``kind``, ``name``) so the generic capacity plans
(``stratus.policies.generic_capacity``) can put that object back, and the workloads it affects.
"""

from __future__ import annotations

import re
from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.match import containers, pod_templates, workload_of_pod
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

QUOTA_MESSAGE = re.compile(r"(?:exceeded quota|failed quota): ([a-z0-9]([-a-z0-9.]*[a-z0-9])?)")
"""The quota name in the ResourceQuota admission plugin's Forbidden message."""


def _owner_workload(v: View, kind: str, name: str) -> str:
    """The workload a person edits for a controller named in an event (a ReplicaSet's Deployment)."""
    if kind == "ReplicaSet":
        rs = next((r for r in v.replicasets if r["metadata"]["name"] == name), None)
        for ref in (rs or {}).get("metadata", {}).get("ownerReferences") or []:
            if ref.get("kind") == "Deployment":
                return str(ref["name"])
    return name


def quota_refusals(v: View) -> list[Finding]:
    out: dict[tuple[str, str], Finding] = {}
    for e in v.events:
        if e.get("reason") != "FailedCreate":
            continue
        msg = str(e.get("message", ""))
        m = QUOTA_MESSAGE.search(msg)
        obj = e.get("involvedObject") or {}
        if m is None or not obj.get("name"):
            continue
        comp = _owner_workload(v, str(obj.get("kind", "")), str(obj["name"]))
        quota = m.group(1)
        out[(comp, quota)] = finding(
            "admission", f"ResourceQuota/{quota}", f"ResourceQuota {quota} refuses new pods of {comp}: {msg[:200]}",
            comp, "QuotaRefusesPods", "critical", [f"resourcequota:{quota}", f"event:{obj['name']}:FailedCreate"],
            kind="ResourceQuota", name=quota, workload=comp)
    return list(out.values())


def _default_limits(v: View) -> dict[str, str]:
    """``memory default -> LimitRange name`` for every Container-type default in the namespace."""
    out: dict[str, str] = {}
    for lr in v.objects("LimitRange"):
        for item in (lr.get("spec") or {}).get("limits") or []:
            mem = (item.get("default") or {}).get("memory")
            if item.get("type") == "Container" and mem:
                out.setdefault(str(mem), lr["metadata"]["name"])
    return out


def _template_memory_limits(v: View) -> dict[str, dict[str, Any]]:
    """``workload -> {container: memory limit or None}`` as the workloads declare them."""
    return {name: {c.get("name", ""): ((c.get("resources") or {}).get("limits") or {}).get("memory")
                   for c in containers(t.get("spec") or {})}
            for _kind, name, t in pod_templates(v)}


def _oom_killed(cs: dict[str, Any]) -> bool:
    for state in ("lastState", "state"):
        if ((cs.get(state) or {}).get("terminated") or {}).get("reason") == "OOMKilled":
            return True
    return False


def limit_range_ooms(v: View) -> list[Finding]:
    defaults = _default_limits(v)
    if not defaults:
        return []
    declared = _template_memory_limits(v)
    out: dict[str, Finding] = {}
    for p in v.pods:
        comp = workload_of_pod(v, p)
        killed = {cs.get("name") for cs in (p.get("status") or {}).get("containerStatuses") or [] if _oom_killed(cs)}
        for c in containers(p.get("spec") or {}):
            limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
            if c.get("name") not in killed or limit is None or str(limit) not in defaults:
                continue
            if declared.get(comp, {}).get(c.get("name", "")) is not None:
                continue  # the workload asked for this limit itself
            lr = defaults[str(limit)]
            out[comp] = finding(
                "admission", f"LimitRange/{lr}", f"{comp}'s container {c.get('name')} was OOM-killed under a memory "
                f"limit of {limit} it never set: the default of LimitRange {lr}", comp, "LimitRangeDefaultOOM",
                "critical", [f"limitrange:{lr}", f"pod:{p['metadata']['name']}:resources"],
                kind="LimitRange", name=lr, workload=comp, limit=str(limit))
    return list(out.values())


def policed(v: View) -> set[str]:
    """Workloads whose pods are OOM-killed under a LimitRange default they never set: whatever else
    changed on them (a new image, a restart) only made new pods that the default was filled into."""
    return {str(f.component) for f in limit_range_ooms(v)}


@analyzer("admission")
def admission(v: View) -> list[Finding]:
    return quota_refusals(v) + limit_range_ooms(v)
