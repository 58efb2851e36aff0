"""Apply an ``Action`` to a manifest: the client-side half of kubectl, shared by every backend.

``mutate(manifest, action)`` returns the new desired object (never edits its input) for verbs that
change one object's spec or metadata. Patches follow their RFCs: JSON patch (RFC 6902, via the
``jsonpatch`` library), JSON merge patch (RFC 7386), and strategic merge (merge patch whose lists of
named items, such as containers and env, merge by ``name``).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonpatch

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError
from stratus.cluster.kinds import POD_TEMPLATE_KINDS

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STRATUS_CHANGE = "stratus.io/change"  # marks pod templates written by STRATUS (rollbacks skip them)


def merge_patch(target: Any, patch: Any, strategic: bool = False) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif strategic and isinstance(v, list) and isinstance(out.get(k), list) and v \
                and all(isinstance(i, dict) and "name" in i for i in v + out[k]):
            merged = {i["name"]: i for i in copy.deepcopy(out[k])}
            order = [i["name"] for i in out[k]]
            for item in v:
                if item.get("$patch") == "delete":
                    merged.pop(item["name"], None)
                    continue
                merged[item["name"]] = merge_patch(merged.get(item["name"], {}), item, True)
                if item["name"] not in order:
                    order.append(item["name"])
            out[k] = [merged[n] for n in order if n in merged]
        else:
            out[k] = merge_patch(out.get(k), v, strategic)
    return out


def _containers(obj: dict[str, Any], which: str | None) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"] if obj["kind"] in POD_TEMPLATE_KINDS else obj["spec"]
    cs = spec.get("containers", [])
    if which:
        cs = [c for c in cs if c["name"] == which]
        if not cs:
            raise ClusterError(f'unable to find container named "{which}" in {obj["kind"].lower()}/'
                               f'{obj["metadata"]["name"]}')
    return cs


def mutate(manifest: dict[str, Any], action: Action, now: float | None = None) -> dict[str, Any]:
    obj = copy.deepcopy(manifest)
    p, verb = action.params, action.verb
    name = f'{obj["kind"].lower()}/{obj["metadata"]["name"]}'
    if verb == "scale":
        if "replicas" not in obj.get("spec", {}):
            raise ClusterError(f"{name} has no spec.replicas to scale")
        obj["spec"]["replicas"] = int(p["replicas"])
    elif verb == "patch":
        kind = p.get("type", "strategic")
        body = p.get("patch")
        if kind == "json":
            try:
                obj = jsonpatch.apply_patch(obj, body or [])
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise ClusterError(f"the JSON patch for {name} does not apply: {exc}") from exc
        elif kind in ("merge", "strategic"):
            if not isinstance(body, dict):
                raise ClusterError(f"a {kind} patch for {name} must be a JSON object")
            obj = merge_patch(obj, body, strategic=kind == "strategic")
        else:
            raise ClusterError(f"unknown patch type {kind!r} for {name}")
    elif verb == "set_image":
        for cname, image in p["images"].items():
            cs = _containers(obj, None if cname == "*" else cname)
            for c in cs:
                c["image"] = image
    elif verb == "set_env":
        for c in _containers(obj, p.get("container")):
            env = c.setdefault("env", [])
            for k, v in (p.get("env") or {}).items():
                hit = next((e for e in env if e["name"] == k), None)
                if hit is None:
                    env.append({"name": k, "value": str(v)})
                else:
                    hit.pop("valueFrom", None)
                    hit["value"] = str(v)
            remove = set(p.get("remove") or [])
            c["env"] = [e for e in env if e["name"] not in remove]
    elif verb == "set_resources":
        for c in _containers(obj, p.get("container")):
            res = c.setdefault("resources", {})
            for section in ("limits", "requests"):
                if p.get(section):
                    res.setdefault(section, {}).update({k: str(v) for k, v in p[section].items()})
    elif verb == "rollout_restart":
        if obj["kind"] not in POD_TEMPLATE_KINDS:
            raise ClusterError(f"{name} cannot be restarted: not a workload")
        t = datetime.fromtimestamp(now or 0, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        obj["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {})[RESTARTED_AT] = t
    elif verb in ("label", "annotate"):
        field = "labels" if verb == "label" else "annotations"
        meta = obj["metadata"].setdefault(field, {})
        meta.update({k: str(v) for k, v in (p.get("set") or {}).items()})
        for k in p.get("remove") or []:
            meta.pop(k, None)
    elif verb in ("cordon", "uncordon"):
        obj["spec"]["unschedulable"] = verb == "cordon"
        if verb == "uncordon":
            obj["spec"].pop("unschedulable", None)
    elif verb == "taint":
        taints = obj["spec"].setdefault("taints", [])
        for t in p.get("add") or []:
            taints[:] = [x for x in taints if not (x["key"] == t["key"] and x.get("effect") == t.get("effect"))]
            taints.append(t)
        for t in p.get("remove") or []:
            taints[:] = [x for x in taints if not (x["key"] == t["key"]
                                                   and (not t.get("effect") or x.get("effect") == t["effect"]))]
    else:
        raise ClusterError(f"verb {verb!r} does not mutate a single manifest")
    if obj.get("kind") in POD_TEMPLATE_KINDS and obj.get("spec", {}).get("template") != manifest.get("spec", {}).get("template"):
        tmeta = obj["spec"]["template"].setdefault("metadata", {})
        tmeta.setdefault("annotations", {})[STRATUS_CHANGE] = verb
    return obj


SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink",
                 "deletionTimestamp", "deletionGracePeriodSeconds")


def clean_manifest(obj: dict[str, Any]) -> dict[str, Any]:
    """What a snapshot keeps to re-create or restore an object: desired state without server fields."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for k in SERVER_FIELDS:
            meta.pop(k, None)
    return out


def previous_revision_template(deployment: dict[str, Any], replicasets: list[dict[str, Any]],
                               to_revision: int | None = None) -> dict[str, Any]:
    """The pod template ``kubectl rollout undo`` would restore, from the Deployment's ReplicaSets."""
    rev_key = "deployment.kubernetes.io/revision"
    uid = deployment["metadata"].get("uid")
    owned = [rs for rs in replicasets
             if any(r.get("uid") == uid for r in rs["metadata"].get("ownerReferences", []))]
    owned.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(rev_key, "0")))
    name = deployment["metadata"]["name"]
    if to_revision:
        hit = [rs for rs in owned if int(rs["metadata"]["annotations"].get(rev_key, "0")) == to_revision]
        if not hit:
            raise ClusterError(f'unable to find specified revision {to_revision} in history of deployment "{name}"')
        rs = hit[0]
    else:
        if len(owned) < 2:
            raise ClusterError(f'no rollout history found for deployment "{name}"')
        rs = owned[-2]
    tmpl = copy.deepcopy(rs["spec"]["template"])
    tmpl.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    return tmpl
