"""Node scheduling: ``kubectl cordon|uncordon <node>`` (params ``{}``), each undone by the other, and
``kubectl taint nodes <node> key=value:Effect | key:Effect-`` (params ``{"add": [{"key", "value",
"effect"}], "remove": [{"key", "effect"?}]}``), undone by restoring the node's previous taints.
"""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action
from stratus.tools.kubectl.args import LABEL_VALUE, check_kind, label_key, make_action, no_extra, target
from stratus.tools.kubectl.lex import GuardError, scan
from stratus.tools.kubectl.registry import FieldPath, VerbSpec, kubectl, q, register

_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_cordon(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {})
    kind, name, rest = target(s.pos, verb, default_kind="Node")
    no_extra(rest)
    check_kind(verb, kind)
    return make_action(verb, kind, name, s.opts.get("namespace", []), {})


def render_cordon(a: Action) -> str:
    return kubectl(a.verb, q(a.name))


def inverse_cordon(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """The opposite verb, unless the node already was in the requested state."""
    v = a.verb
    if before is not None:
        was = bool((before.get("spec") or {}).get("unschedulable"))
        if was == (v == "cordon"):
            return []
    other = "uncordon" if v == "cordon" else "cordon"
    return [Action(verb=other, kind="Node", name=a.name, reason=f"undo {v}")]


def note_cordon(a: Action) -> tuple[bool, str]:
    return True, f"undo: {'uncordon' if a.verb == 'cordon' else 'cordon'}"


def parse_taint(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"--overwrite": (None, False)})
    kind, name, rest = target(s.pos, "taint")
    check_kind("taint", kind)
    add: list[dict[str, str]] = []
    remove: list[dict[str, str]] = []
    for tok in rest:
        removing = tok.endswith("-")
        spec = tok[:-1] if removing else tok
        kv, colon, effect = spec.partition(":")
        key, eq, value = kv.partition("=")
        if "=" in tok and not eq and not removing:
            raise GuardError(f"invalid taint {tok!r}")
        if not key:
            raise GuardError(f"invalid taint {tok!r}: expected key=value:Effect or key:Effect-")
        label_key(key)
        if colon and effect not in _TAINT_EFFECTS:
            raise GuardError(f"invalid taint effect {effect!r}: one of {', '.join(_TAINT_EFFECTS)}")
        if removing:
            item = {"key": key}
            if colon:
                item["effect"] = effect
            remove.append(item)
        else:
            if not colon:
                raise GuardError(f"taint {tok!r} needs an effect: key=value:NoSchedule")
            if value and (len(value) > 63 or not LABEL_VALUE.match(value)):
                raise GuardError(f"invalid taint value {value!r}")
            if any(t["key"] == key and t["effect"] == effect for t in add):
                raise GuardError(f"taint {key}:{effect} given twice")
            add.append({"key": key, "value": value, "effect": effect})
    if not add and not remove:
        raise GuardError("usage: kubectl taint nodes <node> key=value:Effect | key:Effect-")
    return make_action("taint", kind, name, [], {"add": add, "remove": remove})


def render_taint(a: Action) -> str:
    p = a.params
    parts = ["taint", "nodes", q(a.name)]
    for t in p.get("add", []):
        kv = f"{t['key']}={t['value']}" if t.get("value") else t["key"]
        parts.append(q(f"{kv}:{t['effect']}"))
    for t in p.get("remove", []):
        parts.append(q(f"{t['key']}:{t['effect']}-" if t.get("effect") else f"{t['key']}-"))
    if p.get("add"):
        parts.append("--overwrite")
    return kubectl(*parts)


def inverse_taint(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    if before is None:
        return None
    old = [t for t in ((before.get("spec") or {}).get("taints") or []) if isinstance(t, dict)]
    add: list[dict[str, str]] = []
    remove: list[dict[str, str]] = []
    for t in a.params.get("add", []):
        same = [o for o in old if o.get("key") == t["key"] and o.get("effect") == t["effect"]]
        if same:
            if (same[0].get("value") or "") != (t.get("value") or ""):
                add.append({"key": t["key"], "value": same[0].get("value") or "", "effect": t["effect"]})
        else:
            remove.append({"key": t["key"], "effect": t["effect"]})
    for t in a.params.get("remove", []):
        for o in old:
            if o.get("key") == t["key"] and (not t.get("effect") or o.get("effect") == t["effect"]):
                item = {"key": o["key"], "value": o.get("value") or "", "effect": o.get("effect", "")}
                if item not in add:
                    add.append(item)
    if not add and not remove:
        return []
    return [Action(verb="taint", kind="Node", name=a.name, params={"add": add, "remove": remove},
                   reason="undo taint")]


def note_taint(a: Action) -> tuple[bool, str]:
    return True, "undo: restore the node's previous taints"


def writes_cordon(a: Action) -> list[FieldPath]:
    return [("spec", "unschedulable")]


def writes_taint(a: Action) -> list[FieldPath]:
    """One path per taint key (``spec.taints`` is a list of items named by their key)."""
    return [("spec", "taints", t["key"]) for t in [*a.params.get("add", []), *a.params.get("remove", [])]]


register(
    VerbSpec("cordon", ("cordon",), parse=parse_cordon, render=render_cordon, inverse=inverse_cordon,
             writes=writes_cordon, undo_note=note_cordon, risky=True),
    VerbSpec("uncordon", ("uncordon",), parse=parse_cordon, render=render_cordon, inverse=inverse_cordon,
             writes=writes_cordon, undo_note=note_cordon),
    VerbSpec("taint", ("taint",), parse=parse_taint, render=render_taint, inverse=inverse_taint,
             writes=writes_taint, undo_note=note_taint, risky=True),
)
