"""``kubectl rollout undo|restart <workload>``: params ``{}`` or ``{"to_revision": int}`` (undo) and ``{}``
(restart); both undone by restoring the workload's snapshot. ``rollout status|history`` are reads.
A restart writes one pod template annotation; an undo writes the template of an earlier revision, whose
labels match the same selector (the selector is immutable and every revision's pods matched it), so it
writes the template's spec and annotations but no label the selector matches.
"""

from __future__ import annotations

from stratus.cluster.actions import Action
from stratus.cluster.mutate import RESTARTED_AT
from stratus.tools.kubectl.args import check_kind, make_action, no_extra, target
from stratus.tools.kubectl.lex import one, scan, to_int
from stratus.tools.kubectl.registry import (
    FieldPath,
    VerbSpec,
    cannot_compute,
    kubectl,
    nsflag,
    ref,
    register,
    restore_inverse,
)


def parse_undo(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"--to-revision": ("to_revision", True)})
    kind, name, rest = target(s.pos, "rollout undo")
    no_extra(rest)
    check_kind("rollout_undo", kind)
    rev = one(s, "to_revision", "--to-revision")
    params = {} if rev is None else {"to_revision": to_int(rev, "--to-revision")}
    return make_action("rollout_undo", kind, name, s.opts.get("namespace", []), params)


def render_undo(a: Action) -> str:
    parts = ["rollout", "undo", ref(a), *nsflag(a)]
    if a.params.get("to_revision") is not None:
        parts.append(f"--to-revision={int(a.params['to_revision'])}")
    return kubectl(*parts)


def parse_restart(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {})
    kind, name, rest = target(s.pos, "rollout restart")
    no_extra(rest)
    check_kind("rollout_restart", kind)
    return make_action("rollout_restart", kind, name, s.opts.get("namespace", []), {})


def render_restart(a: Action) -> str:
    return kubectl("rollout", "restart", ref(a), *nsflag(a))


def writes_undo(a: Action) -> list[FieldPath]:
    return [("spec", "template", "spec"), ("spec", "template", "metadata", "annotations")]


def writes_restart(a: Action) -> list[FieldPath]:
    return [("spec", "template", "metadata", "annotations", RESTARTED_AT)]


# registration order is the order `kubectl rollout <unknown>` lists the supported subcommands in
register(
    VerbSpec("rollout_undo", ("rollout", "undo"), parse=parse_undo, render=render_undo, inverse=restore_inverse,
             writes=writes_undo, after=cannot_compute),
    VerbSpec("rollout_restart", ("rollout", "restart"), parse=parse_restart, render=render_restart,
             inverse=restore_inverse, writes=writes_restart),
)
