"""Apply an ``Action`` to a manifest: the client-side half of kubectl, shared by every backend.

``mutate(manifest, action)`` returns the new desired object (never edits its input) for verbs that
change one object's spec or metadata. Patches follow their RFCs: JSON patch (RFC 6902, via the
``jsonpatch`` library), JSON merge patch (RFC 7386), and strategic merge (merge patch whose known lists
merge item by item on their Go types' merge key: containers and env by ``name``, Service ports by ``port``,
container ports by ``containerPort``; see ``data/merge_keys.yaml``).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError
from stratus.cluster.kinds import POD_TEMPLATE_KINDS

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
STRATUS_CHANGE = "stratus.io/change"  # marks pod templates written by STRATUS (rollbacks skip them)
_MERGE_DATA = yaml.safe_load((Path(__file__).parent / "data" / "merge_keys.yaml").read_text())
_MERGE_KEYS: dict[str, str] = _MERGE_DATA["merge_keys"]
_CONTAINER_LISTS = frozenset(_MERGE_DATA["container_lists"])
_CONTAINER_PORTS_KEY: str = _MERGE_DATA["container_ports_key"]


def merge_patch(target: Any, patch: Any, strategic: bool = False, in_container: bool = False) -> Any:
    """RFC 7386 merge of ``patch`` into ``target``; ``strategic`` merges the lists named in
    ``data/merge_keys.yaml`` item by item, as the API server's strategic merge does."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        key = (_CONTAINER_PORTS_KEY if k == "ports" and in_container else _MERGE_KEYS.get(k)) if strategic else None
        if v is None:
            out.pop(k, None)
        elif key and isinstance(v, list) and isinstance(out.get(k), list) \
                and all(isinstance(i, dict) and key in i for i in v + out[k]):
            out[k] = _merge_list(out[k], v, key, k in _CONTAINER_LISTS)
        else:
            out[k] = merge_patch(out.get(k), v, strategic)
    return out


def _merge_list(live: list[dict[str, Any]], patch: list[dict[str, Any]], key: str,
                containers: bool) -> list[dict[str, Any]]:
    """Merge ``patch`` items into ``live`` by ``key``, ordered as apimachinery's strategicpatch orders them:
    patch items keep the patch's order, live-only items are slotted in before the first patch item
    that follows them in the live list (so a new item comes before the live-only items after it)."""
    by_key = {i[key]: i for i in live}
    deleted = {i[key] for i in patch if i.get("$patch") == "delete"}
    patched = [merge_patch(by_key.get(i[key], {}), i, True, containers) for i in patch if i[key] not in deleted]
    in_patch = {i[key] for i in patch}
    server_only = [copy.deepcopy(i) for i in live if i[key] not in in_patch]
    order = [i[key] for i in live]
    out: list[dict[str, Any]] = []
    while server_only or patched:
        if server_only and (not patched or (patched[0][key] in order
                                            and order.index(server_only[0][key]) < order.index(patched[0][key]))):
            out.append(server_only.pop(0))
        else:
            out.append(patched.pop(0))
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
