"""Generic capacity plans: namespace policies and claims that keep pods from being created, running or
scheduled, put back as the change journal last saw them while healthy.

Runbooks like the others (registered in ``runbooks.REGISTRY`` for classes of runbooks.yaml), so every
candidate goes through the guard, the dry run and TNR:

- ``quota_refusal``: a ResourceQuota the admission plugin names in a refusal, and that changed since
  the namespace was last healthy, is deleted (the journal saw it created) or re-applied as it was;
- ``limit_range_default``: a LimitRange whose default memory limit the OOM-killed containers run under
  is put back the same way, and in the same plan every workload whose pods were admitted under it is
  restarted, so they are admitted again without the default (a plan that only removed it would leave
  the running pods with the limit); one whose own template also changed since the namespace was last
  healthy, in more than its image, gets that template back instead (the OOM kills hid that mistake);
- ``claim_unusable``: a PersistentVolumeClaim a workload mounts is re-created from its last healthy
  version when it was deleted (its data went with it), or deleted and re-created when it is Pending and
  bound to no volume (it never held data): a claim's spec is immutable, so a wrong StorageClass is fixed
  by a new claim. Without a journal, a Pending claim naming a StorageClass that does not exist is
  re-created with the cluster's default class. A Bound claim is never deleted or replaced (the guard
  refuses it too: ``stratus.tools.kubectl.claims``).

The policy object comes from the finding's facts, never from a guess: no change is proposed that the
evidence does not tie to the failing pods, and none at all without a journal for quotas and limit ranges
(a quota someone set on purpose is theirs to relax).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError
from stratus.cluster.mutate import clean_manifest
from stratus.policies.runbooks import Candidate, runbook
from stratus.state import Hypothesis
from stratus.tools.analyzers import View
from stratus.tools.analyzers.match import containers, pod_templates, workload_of_pod

CLAIM = "PersistentVolumeClaim"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BINDING_ANNOTATIONS = ("pv.kubernetes.io/", "volume.beta.kubernetes.io/", "volume.kubernetes.io/")
"""Annotations the PV controller writes while binding a claim: a new claim must not carry the old binding."""
RESTARTABLE = ("Deployment", "StatefulSet", "DaemonSet")


def _objects(h: Hypothesis, kind: str) -> list[str]:
    return list(dict.fromkeys(str(f["name"]) for f in h.data.get("facts") or []
                              if f.get("kind") == kind and f.get("name")))


def _current(v: View, kind: str, name: str) -> dict[str, Any] | None:
    try:
        return v.cluster.get(kind, name, v.namespace)
    except ClusterError:
        return None


def _created_unhealthy(v: View, kind: str, name: str) -> bool:
    """Whether the journal saw the object created and the namespace was never healthy with it since."""
    j = v.journal
    return any(c["kind"] == kind and c["name"] == name and c["op"] == "create"
               for c in j.unsettled(0.0, v.cluster.now()) if c["namespace"] in (None, v.namespace))


def put_back(v: View, kind: str, name: str) -> list[Action]:
    """Undo an unsettled change to a namespace policy: delete it when the journal saw it created (and it
    was never healthy), re-apply its last healthy version when it changed; nothing otherwise."""
    j = v.journal
    if j is None or j.current_is_healthy(kind, name, v.namespace) or _current(v, kind, name) is None:
        return []
    healthy = j.last_healthy(kind, name, v.namespace)
    if healthy is None:
        return [Action(verb="delete", kind=kind, name=name)] if _created_unhealthy(v, kind, name) else []
    healthy.setdefault("metadata", {})["namespace"] = v.namespace
    return [Action(verb="apply", kind=kind, name=name, params={"manifest": healthy})]


@runbook("quota_refusal")
def quota_refusal(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    for name in _objects(h, "ResourceQuota"):
        actions = put_back(v, "ResourceQuota", name)
        if actions:
            yield actions, f"ResourceQuota {name} is as it was while healthy and admits {h.component}'s pods again"


def _defaults(lr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"limits": {...}, "requests": {...}}`` a LimitRange fills into containers that set none."""
    out: dict[str, dict[str, Any]] = {"limits": {}, "requests": {}}
    for item in (lr.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            out["limits"].update(item.get("default") or {})
            out["requests"].update(item.get("defaultRequest") or {})
    return out


def admitted_under(v: View, lr: dict[str, Any]) -> list[tuple[str, str]]:
    """Workloads ``(kind, name)`` with a pod carrying a LimitRange default its template does not set."""
    defaults = _defaults(lr)
    templates = {name: (kind, {c.get("name"): c.get("resources") or {} for c in containers(t.get("spec") or {})})
                 for kind, name, t in pod_templates(v) if kind in RESTARTABLE}
    out: list[tuple[str, str]] = []
    for p in v.pods:
        comp = workload_of_pod(v, p)
        if comp not in templates or (templates[comp][0], comp) in out:
            continue
        kind, declared = templates[comp]
        for c in containers(p.get("spec") or {}):
            own = declared.get(c.get("name")) or {}
            res = c.get("resources") or {}
            if any(str((res.get(section) or {}).get(k)) == str(val) and k not in (own.get(section) or {})
                   for section, values in defaults.items() for k, val in values.items()):
                out.append((kind, comp))
                break
    return sorted(out)


@runbook("limit_range_default")
def limit_range_default(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    for name in _objects(h, "LimitRange"):
        lr = _current(v, "LimitRange", name)
        actions = put_back(v, "LimitRange", name) if lr is not None else []
        if not actions:
            continue
        restarts = [_renew(v, kind, w) for kind, w in admitted_under(v, lr or {})]
        yield actions + restarts, (f"LimitRange {name} is as it was while healthy and the pods admitted under it "
                                   f"({', '.join(w for _k, w in admitted_under(v, lr or {})) or 'none'}) run "
                                   f"without its default")


def _wiring(template: dict[str, Any]) -> dict[str, Any]:
    """A pod template without what routine changes move (image tags, the restart annotation)."""
    t = copy.deepcopy(template)
    t.get("metadata", {}).pop("annotations", None)
    for c in containers(t.get("spec") or {}):
        c.pop("image", None)
    return t


def _renew(v: View, kind: str, name: str) -> Action:
    """How a workload admitted under the LimitRange gets new pods: a restart, or, when its own template
    changed since the namespace was last healthy in more than its image (a probe, a command: a second
    mistake that a restart would only re-create, and that the OOM kills hid), its last healthy template
    at its current replica count."""
    j, cur = v.journal, _current(v, kind, name)
    healthy = j.last_healthy(kind, name, v.namespace) if j is not None else None
    if healthy is None or cur is None or j is None or j.current_is_healthy(kind, name, v.namespace):
        return Action(verb="rollout_restart", kind=kind, name=name)
    old, now = ((m.get("spec") or {}).get("template") or {} for m in (healthy, cur))
    if _wiring(old) == _wiring(now):
        return Action(verb="rollout_restart", kind=kind, name=name)
    healthy.setdefault("metadata", {})["namespace"] = v.namespace
    if "replicas" in (cur.get("spec") or {}):
        healthy.setdefault("spec", {})["replicas"] = cur["spec"]["replicas"]
    return Action(verb="apply", kind=kind, name=name, params={"manifest": healthy})


def fresh_claim(v: View, manifest: dict[str, Any]) -> dict[str, Any]:
    """A claim to create from a kept manifest: no status, no server fields, no binding to the old volume."""
    m = clean_manifest(manifest)
    meta = m.setdefault("metadata", {})
    meta["namespace"] = v.namespace
    meta.pop("finalizers", None)
    ann = {k: val for k, val in (meta.get("annotations") or {}).items() if not k.startswith(BINDING_ANNOTATIONS)}
    if ann:
        meta["annotations"] = ann
    else:
        meta.pop("annotations", None)
    m.get("spec", {}).pop("volumeName", None)
    return m


def pending_unbound(claim: dict[str, Any]) -> bool:
    """Whether a claim is Pending and bound to no volume: it never held data."""
    return (claim.get("status") or {}).get("phase") == "Pending" and not (claim.get("spec") or {}).get("volumeName")


def _default_class(v: View) -> str | None:
    for sc in v.objects("StorageClass"):
        if ((sc.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS) == "true":
            return str(sc["metadata"]["name"])
    return None


def _claim_fixes(v: View, name: str) -> Iterator[Candidate]:
    cur = _current(v, CLAIM, name)
    healthy = v.journal.last_healthy(CLAIM, name, v.namespace) if v.journal is not None else None
    if cur is None:
        if healthy is not None:
            yield [Action(verb="create", kind=CLAIM, name=name, params={"manifest": fresh_claim(v, healthy)})], \
                f"PersistentVolumeClaim {name} exists again as it was while healthy (empty) and binds"
        return
    if not pending_unbound(cur):
        return
    if healthy is not None and fresh_claim(v, healthy).get("spec") != fresh_claim(v, cur).get("spec"):
        yield [Action(verb="delete", kind=CLAIM, name=name),
               Action(verb="create", kind=CLAIM, name=name, params={"manifest": fresh_claim(v, healthy)})], \
            f"PersistentVolumeClaim {name} is re-created as it was while healthy and binds"
    cls = (cur.get("spec") or {}).get("storageClassName")
    classes = {sc["metadata"]["name"] for sc in v.objects("StorageClass")}
    default = _default_class(v)
    if cls and default and classes and cls not in classes and "StorageClass" not in v.truncated and \
            (healthy is None or ((healthy.get("spec") or {}).get("storageClassName") or default) != default):
        fixed = fresh_claim(v, cur)
        fixed["spec"]["storageClassName"] = default
        yield [Action(verb="delete", kind=CLAIM, name=name),
               Action(verb="create", kind=CLAIM, name=name, params={"manifest": fixed})], \
            f"PersistentVolumeClaim {name} asks for the default StorageClass {default} and binds"


@runbook("claim_unusable")
def claim_unusable(v: View, h: Hypothesis, db: dict[str, Any]) -> Iterator[Candidate]:
    for name in _objects(h, CLAIM):
        yield from _claim_fixes(v, name)
