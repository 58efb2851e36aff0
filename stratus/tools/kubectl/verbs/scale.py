"""``kubectl scale <type>/<name> --replicas=N``: params ``{"replicas": int}``; undone by restoring the snapshot."""

from __future__ import annotations

from stratus.cluster.actions import Action
from stratus.tools.kubectl.args import check_kind, make_action, no_extra, target
from stratus.tools.kubectl.lex import one, scan, to_int
from stratus.tools.kubectl.registry import FieldPath, VerbSpec, kubectl, nsflag, ref, register, restore_inverse
from stratus.tools.kubectl.tables import POLICY


def parse(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"--replicas": ("replicas", True), "--record": (None, False)})
    kind, name, rest = target(s.pos, "scale")
    no_extra(rest)
    check_kind("scale", kind)
    replicas = to_int(one(s, "replicas", "--replicas=N", required=True), "--replicas")
    return make_action("scale", kind, name, s.opts.get("namespace", []), {"replicas": replicas})


def render(a: Action) -> str:
    return kubectl("scale", ref(a), *nsflag(a), f"--replicas={int(a.params['replicas'])}")


def policy(a: Action) -> str | None:
    """Refuse replica counts above the policy limit."""
    if a.params["replicas"] > POLICY["max_replicas"]:
        return f"--replicas={a.params['replicas']} exceeds the limit of {POLICY['max_replicas']}"
    return None


def writes(a: Action) -> list[FieldPath]:
    return [("spec", "replicas")]


register(VerbSpec("scale", ("scale",), parse=parse, render=render, inverse=restore_inverse, writes=writes,
                  policy=policy))
