"""``kubectl apply|create [-n NS] -f -`` with one inline manifest on the following lines.

Params ``{"manifest": dict}``. Undone by deleting the object when it did not exist before, else by
restoring its snapshot; the guard refuses manifests that switch on privileged pod settings. ``apply``
replaces the object with the manifest (the identity check compares the two); ``create`` defines a new
object, so it changes no existing object's identity (the API server refuses it when the object exists).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from stratus.cluster.actions import Action
from stratus.cluster.base import Ref
from stratus.cluster.kinds import KINDS
from stratus.tools.kubectl.args import check_kind, check_name, kind_or_none, load_doc, make_action
from stratus.tools.kubectl.lex import GuardError, first_positional, one, scan
from stratus.tools.kubectl.policy import privilege_escalation
from stratus.tools.kubectl.registry import (
    FieldPath,
    VerbSpec,
    cannot_compute,
    kubectl,
    leaves,
    nsflag,
    register,
    restore,
    writes_nothing,
)
from stratus.tools.kubectl.tables import DANGEROUS_FLAGS


def parse(verb: str, args: list[str], body: str | None) -> Action:
    what = first_positional(args)
    if verb == "create" and what is not None and what != "-":
        if kind_or_none(what) == "Secret" or what.startswith("secret"):
            raise GuardError("`kubectl create secret` is not allowed: secrets are not modified by STRATUS "
                             "(no known inverse)")
        raise GuardError(f"imperative `kubectl create {what}` is not supported (no known inverse): use "
                         "`kubectl create -f -` followed by the manifest on the next lines")
    s = scan(args, {"-f": ("filename", True), "--filename": ("filename", True)})
    if s.pos:
        raise GuardError(f"unexpected argument {s.pos[0]!r}: use `kubectl {verb} -f -` + inline manifest")
    fname = one(s, "filename", "-f")
    if fname is None:
        raise GuardError(f"use `kubectl {verb} -f -` followed by the manifest on the next lines")
    if fname != "-":
        raise GuardError(DANGEROUS_FLAGS["-f"])
    if body is None or not body.strip():
        raise GuardError(f"manifest missing: put the YAML/JSON manifest on the lines after `kubectl {verb} -f -`")
    manifest = load_doc(body, "manifest")
    if not isinstance(manifest, dict):
        raise GuardError("the manifest must be a single YAML/JSON object")
    kind = manifest.get("kind")
    if kind == "List" or "items" in manifest:
        raise GuardError("one object per manifest (no List): apply objects one at a time")
    if not isinstance(kind, str) or kind not in KINDS:
        raise GuardError(f"manifest kind {kind!r} is unknown or missing")
    api = manifest.get("apiVersion")
    if not isinstance(api, str) or not api:
        raise GuardError("manifest needs apiVersion")
    group = api.rpartition("/")[0] if "/" in api else ""
    if group != KINDS[kind]["group"]:
        raise GuardError(f"apiVersion {api!r} does not match kind {kind}")
    check_kind(verb, kind)
    meta = manifest.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise GuardError("manifest needs metadata.name (generateName is not supported)")
    name = check_name(meta["name"], kind)
    ns_vals = list(s.opts.get("namespace", []))
    mns = meta.get("namespace")
    if mns is not None and KINDS[kind]["namespaced"]:
        if not isinstance(mns, str):
            raise GuardError("metadata.namespace must be a string")
        if ns_vals and mns not in ns_vals:
            raise GuardError(f"the manifest namespace {mns!r} conflicts with -n {ns_vals[0]}")
        ns_vals.append(mns)
    return make_action(verb, kind, name, ns_vals, {"manifest": manifest})


def render(a: Action) -> str:
    head = kubectl(a.verb, *nsflag(a), "-f", "-")
    manifest = yaml.safe_dump(a.params["manifest"], sort_keys=False, default_flow_style=False, allow_unicode=True)
    return head + "\n" + manifest.rstrip("\n")


def inverse(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """Delete what did not exist before; otherwise restore the snapshot."""
    if before is None:
        return [Action(verb="delete", kind=a.kind, name=a.name, namespace=a.namespace,
                       reason=f"undo {a.verb}: delete the created {a.kind}")]
    return [restore(a, before, a.verb)]


def undo_note(a: Action) -> tuple[bool, str]:
    return True, "undo: delete if it did not exist, else restore the snapshot"


def policy(a: Action) -> str | None:
    """Refuse manifests that set privileged pod fields."""
    return privilege_escalation([("", a.params["manifest"])])


def writes_apply(a: Action) -> list[FieldPath]:
    """Every field the manifest sets, except those that select the object (its kind, name, namespace)."""
    selects = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}
    return [p for p in leaves(a.params["manifest"]) if p not in selects]


def after_apply(a: Action, before: dict[str, Any]) -> dict[str, Any]:
    """The applied manifest is the object's new desired state (in the namespace of ``-n`` when it names none)."""
    after = copy.deepcopy(a.params["manifest"])
    ns = (before.get("metadata") or {}).get("namespace")
    if ns is not None:
        after.setdefault("metadata", {}).setdefault("namespace", ns)
    return after


def touches(a: Action, namespace: str) -> Ref:
    """The object the manifest names (its own namespace first)."""
    m = a.params.get("manifest") or {}
    return (m.get("kind", a.kind), m.get("metadata", {}).get("name", a.name),
            m.get("metadata", {}).get("namespace") or a.namespace or namespace)


register(
    VerbSpec("apply", ("apply",), parse=parse, render=render, inverse=inverse, writes=writes_apply,
             undo_note=undo_note, policy=policy, touches=touches, after=after_apply, risky=True, manifest_body=True),
    VerbSpec("create", ("create",), parse=parse, render=render, inverse=inverse, writes=writes_nothing,
             undo_note=undo_note, policy=policy, touches=touches, after=cannot_compute, risky=True,
             manifest_body=True),
)
