"""``kubectl label|annotate <type>/<name> key=value [key2-]``: params ``{"set": {key: value}, "remove":
[key]}``, rendered with ``--overwrite``; undone by restoring the snapshot. They write
``metadata.labels.<key>`` / ``metadata.annotations.<key>``: reserved keys (a Node's ``kubernetes.io/hostname``)
are refused by the identity check (``data/identity.yaml``).
"""

from __future__ import annotations

from stratus.cluster.actions import Action
from stratus.tools.kubectl.args import LABEL_VALUE, assignments, check_kind, label_key, make_action, target
from stratus.tools.kubectl.lex import GuardError, scan
from stratus.tools.kubectl.registry import FieldPath, VerbSpec, kubectl, nsflag, q, ref, register, restore_inverse


def parse(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"--overwrite": (None, False)})
    kind, name, rest = target(s.pos, verb)
    check_kind(verb, kind)
    sets, removes = assignments(rest, verb)
    if not sets and not removes:
        raise GuardError(f"usage: kubectl {verb} <type>/<name> key=value [key2-]")
    for k in [*sets, *removes]:
        label_key(k)
    if verb == "label":
        for k, v in sets.items():
            if len(v) > 63 or not LABEL_VALUE.match(v):
                raise GuardError(f"invalid label value {v!r} for {k!r}")
    return make_action(verb, kind, name, s.opts.get("namespace", []), {"set": sets, "remove": removes})


def render(a: Action) -> str:
    parts = [a.verb, ref(a), *nsflag(a)]
    parts += [q(f"{k}={v}") for k, v in a.params.get("set", {}).items()]
    parts += [q(f"{k}-") for k in a.params.get("remove", [])]
    parts.append("--overwrite")
    return kubectl(*parts)


def writes(a: Action) -> list[FieldPath]:
    field = "labels" if a.verb == "label" else "annotations"
    return [("metadata", field, k) for k in [*a.params["set"], *a.params["remove"]]]


register(
    VerbSpec("label", ("label",), parse=parse, render=render, inverse=restore_inverse, writes=writes),
    VerbSpec("annotate", ("annotate",), parse=parse, render=render, inverse=restore_inverse, writes=writes),
)
