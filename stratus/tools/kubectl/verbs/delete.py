"""``kubectl delete <type>/<name>``: params ``{}`` plus optional ``"grace_period": int``, ``"wait": False``.

Only Pods, NetworkPolicies, ResourceQuotas, LimitRanges, PersistentVolumeClaims (Pending and unbound
ones: the guard's claim rule) and chaos objects: a controlled pod needs no undo (its controller
recreates it), the others are re-applied from the snapshot. Deleting anything else is refused with the
reason in ``data/refusals.yaml``.
"""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action
from stratus.tools.kubectl.args import check_kind, kind_of, make_action, no_extra, target
from stratus.tools.kubectl.lex import GuardError, one, scan, to_int
from stratus.tools.kubectl.registry import (
    VerbSpec,
    cannot_compute,
    kubectl,
    nsflag,
    ref,
    register,
    restore,
    restore_note,
    writes_nothing,
)
from stratus.tools.kubectl.tables import ALLOW_LIST, DELETE_REFUSALS


def parse(verb: str, args: list[str], body: str | None) -> Action:
    s = scan(args, {"--grace-period": ("grace_period", True), "--wait": ("wait", False),
                    "--ignore-not-found": (None, False)})
    if len(s.pos) == 1 and "/" not in s.pos[0]:
        kind = kind_of(s.pos[0])
        if kind in DELETE_REFUSALS:
            raise GuardError(DELETE_REFUSALS[kind])
    kind, name, rest = target(s.pos, "delete")
    if kind in DELETE_REFUSALS:
        raise GuardError(DELETE_REFUSALS[kind])
    no_extra(rest)
    check_kind("delete", kind)
    params: dict[str, Any] = {}
    gp = one(s, "grace_period", "--grace-period")
    if gp is not None:
        params["grace_period"] = to_int(gp, "--grace-period")
    if one(s, "wait", "--wait") == "false":
        params["wait"] = False
    return make_action("delete", kind, name, s.opts.get("namespace", []), params)


def render(a: Action) -> str:
    parts = ["delete", ref(a), *nsflag(a)]
    if a.params.get("grace_period") is not None:
        parts.append(f"--grace-period={int(a.params['grace_period'])}")
    if a.params.get("wait") is False:
        parts.append("--wait=false")
    return kubectl(*parts)


def _is_controlled(pod: dict[str, Any]) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") for r in refs if isinstance(r, dict))


def inverse(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """A controlled pod comes back by itself; a bare pod or another deleted object is re-applied."""
    if a.kind == "Pod":
        if before is not None and not _is_controlled(before):
            return [restore(a, before, "delete of a bare pod")]
        return []
    if a.kind in ALLOW_LIST["delete"]:
        return None if before is None else [restore(a, before, "delete")]
    return None


def undo_note(a: Action) -> tuple[bool, str]:
    if a.kind == "Pod":
        return True, "undo: none needed when a controller recreates the pod; bare pods are re-applied"
    return restore_note(a)


register(VerbSpec("delete", ("delete",), parse=parse, render=render, inverse=inverse, writes=writes_nothing,
                  undo_note=undo_note, after=cannot_compute, risky=True))
