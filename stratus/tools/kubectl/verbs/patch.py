"""``kubectl patch <type>/<name> --type=json|merge|strategic -p '<patch>'``.

Params ``{"type": "json"|"merge"|"strategic", "patch": list (json) | dict}``; undone by restoring the
snapshot; the guard refuses patches that switch on privileged pod settings. The paths it writes are the
json patch paths (``move`` also its ``from``), or the leaves of a merge or strategic patch.
"""

from __future__ import annotations

import json
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.kinds import KINDS
from stratus.tools.kubectl.args import check_kind, load_doc, make_action, no_extra, target
from stratus.tools.kubectl.lex import GuardError, one, scan
from stratus.tools.kubectl.policy import privilege_escalation
from stratus.tools.kubectl.registry import (
    FieldPath,
    VerbSpec,
    kubectl,
    leaves,
    nsflag,
    q,
    ref,
    register,
    restore_inverse,
)

_JSON_PATCH_OPS = ("add", "remove", "replace", "test", "move", "copy")
# API groups whose objects the API server can strategic-merge (built-in types; not custom resources)
_STRATEGIC_GROUPS = ("", "apps", "networking.k8s.io", "autoscaling", "coordination.k8s.io", "batch")


def _validate_json_patch(ops: Any) -> None:
    if not isinstance(ops, list) or not ops:
        raise GuardError("a --type=json patch must be a non-empty JSON list of operations, e.g. "
                         "'[{\"op\":\"replace\",\"path\":\"/spec/replicas\",\"value\":1}]'")
    for op in ops:
        if not isinstance(op, dict):
            raise GuardError("each json patch operation must be an object with op and path")
        kind = op.get("op")
        if kind not in _JSON_PATCH_OPS:
            raise GuardError(f"json patch op must be one of {', '.join(_JSON_PATCH_OPS)}, got {kind!r}")
        path = op.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise GuardError("json patch path must be a string starting with '/'")
        allowed = {"op", "path"}
        if kind in ("add", "replace", "test"):
            if "value" not in op:
                raise GuardError(f"json patch op {kind!r} needs a value")
            allowed.add("value")
        if kind in ("move", "copy"):
            if not isinstance(op.get("from"), str) or not op["from"].startswith("/"):
                raise GuardError(f"json patch op {kind!r} needs a 'from' path")
            allowed.add("from")
        extra = set(op) - allowed
        if extra:
            raise GuardError(f"unexpected keys in json patch op: {', '.join(sorted(extra))}")


def parse(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"--type": ("type", True), "-p": ("patch", True), "--patch": ("patch", True),
                    "--record": (None, False)})
    kind, name, rest = target(s.pos, "patch")
    no_extra(rest)
    check_kind("patch", kind)
    ptype = one(s, "type", "--type") or "strategic"
    if ptype not in ("json", "merge", "strategic"):
        raise GuardError(f"--type must be json, merge or strategic, got {ptype!r}")
    raw = one(s, "patch", "-p '<patch>'", required=True)
    doc = load_doc(raw, "patch")
    if ptype == "json":
        _validate_json_patch(doc)
    elif not isinstance(doc, dict) or not doc:
        raise GuardError(f"a --type={ptype} patch must be a non-empty JSON object")
    if ptype == "strategic" and KINDS[kind]["group"] not in _STRATEGIC_GROUPS:
        raise GuardError(f"strategic merge patch is not supported for custom resources ({kind}): use "
                         "--type=merge or --type=json")
    return make_action("patch", kind, name, s.opts.get("namespace", []), {"type": ptype, "patch": doc})


def render(a: Action) -> str:
    doc = json.dumps(a.params["patch"], separators=(",", ":"))
    return kubectl("patch", ref(a), *nsflag(a), f"--type={a.params.get('type', 'strategic')}", "-p", q(doc))


def policy(a: Action) -> str | None:
    """Refuse patches that set privileged pod fields (json patches: each added or replaced value)."""
    p = a.params
    docs: list[tuple[str, Any]] = []
    if p["type"] == "json":
        for op in p["patch"]:
            if op["op"] in ("add", "replace"):
                segs = op["path"].split("/")
                docs.append((segs[-2] if len(segs) > 2 else "", {segs[-1]: op["value"]}))
    else:
        docs.append(("", p["patch"]))
    return privilege_escalation(docs)


def _pointer(path: str) -> FieldPath:
    """A JSON pointer (RFC 6901) as path segments: ``/metadata/labels/kubernetes.io~1hostname``."""
    return tuple(seg.replace("~1", "/").replace("~0", "~") for seg in path.split("/")[1:])


def writes(a: Action) -> list[FieldPath]:
    """The paths the patch writes (json ``test`` writes nothing; ``move`` also empties its source)."""
    if a.params["type"] != "json":
        return leaves(a.params["patch"])
    out = []
    for op in a.params["patch"]:
        if op["op"] == "test":
            continue
        out.append(_pointer(op["path"]))
        if op["op"] == "move":
            out.append(_pointer(op["from"]))
    return out


register(VerbSpec("patch", ("patch",), parse=parse, render=render, inverse=restore_inverse, writes=writes,
                  policy=policy, risky=True))
