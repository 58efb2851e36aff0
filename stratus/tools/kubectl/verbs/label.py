"""``kubectl label|annotate <type>/<name> key=value [key2-]``: params ``{"set": {key: value}, "remove":
[key]}``, rendered with ``--overwrite``; undone by restoring the snapshot. Reserved node labels are refused.
"""

from __future__ import annotations

from stratus.cluster.actions import Action
from stratus.tools.kubectl.args import LABEL_VALUE, assignments, check_kind, label_key, make_action, target
from stratus.tools.kubectl.lex import GuardError, scan
from stratus.tools.kubectl.registry import VerbSpec, kubectl, nsflag, q, ref, register, restore_inverse
from stratus.tools.kubectl.tables import POLICY


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


def policy_label(a: Action) -> str | None:
    """Refuse changing node labels under the reserved Kubernetes domains."""
    if a.kind != "Node":
        return None
    for k in [*a.params["set"], *a.params["remove"]]:
        prefix = k.rpartition("/")[0]
        if any(prefix == s or prefix.endswith("." + s) for s in POLICY["reserved_node_label_suffixes"]):
            return f"node label {k!r} is reserved (changing it corrupts node identity/scheduling)"
    return None


register(
    VerbSpec("label", ("label",), parse=parse, render=render, inverse=restore_inverse, policy=policy_label),
    VerbSpec("annotate", ("annotate",), parse=parse, render=render, inverse=restore_inverse),
)
