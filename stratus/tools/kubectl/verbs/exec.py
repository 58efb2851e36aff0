"""``kubectl exec <pod>|<workload> [-c container] -- <catalogued db command>``.

Params ``{"db_command": {...}, "container"?: str}`` (see ``verbs/db.py``). Database state is not a
manifest, so nothing is snapshotted: the undo is the catalogued inverse command, which may need the
state before (``params.previous``, e.g. the previous password or a dropped user's roles).
"""

from __future__ import annotations

import copy
from typing import Any

from stratus.cluster.actions import Action
from stratus.tools.kubectl.args import DNS_LABEL, check_kind, make_action, target
from stratus.tools.kubectl.lex import GuardError, one, scan
from stratus.tools.kubectl.registry import (
    VerbSpec,
    cannot_compute,
    kubectl,
    nsflag,
    previous,
    q,
    ref,
    register,
    writes_nothing,
)
from stratus.tools.kubectl.tables import DB_INVERSE_OP, EXEC_REFUSAL, INTERACTIVE_REASON
from stratus.tools.kubectl.verbs.db import parse_db_command, render_db_command


def parse(verb: str, args: list[str], body: str | None) -> Action:
    if "--" not in args:
        for a in args:
            if (len(a) > 1 and a.startswith("-") and set(a[1:]) <= set("it")) or a in ("--stdin", "--tty"):
                raise GuardError(INTERACTIVE_REASON.format(f=a))
        raise GuardError("put `--` between the kubectl flags and the command to run in the container. "
                         + EXEC_REFUSAL)
    s = scan(args, {"-c": ("container", True), "--container": ("container", True)}, dashdash=True)
    if len(s.pos) != 1:
        raise GuardError("usage: kubectl exec <pod>|deployment/<name> [-n ns] [-c container] -- <command>")
    kind, name, _rest = target(s.pos, "exec", default_kind="Pod")
    check_kind("exec", kind)
    params: dict[str, Any] = {"db_command": parse_db_command(s.after or [])}
    container = one(s, "container", "-c")
    if container is not None:
        if not DNS_LABEL.match(container):
            raise GuardError(f"invalid container name {container!r}")
        params["container"] = container
    return make_action("exec", kind, name, s.opts.get("namespace", []), params)


def render(a: Action) -> str:
    where = q(a.name) if a.kind == "Pod" else ref(a)
    parts = ["exec", where, *nsflag(a)]
    if a.params.get("container"):
        parts += ["-c", q(a.params["container"])]
    return kubectl(*parts, "--", *render_db_command(a.params["db_command"]))


def inverse(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """The catalogued inverse db command (``before`` is unused: there is no manifest)."""
    cmd = dict(a.params["db_command"])
    cmd.pop("previous", None)
    op = cmd["op"]
    prev = previous(a)
    inv = copy.deepcopy(cmd)
    if op == "grant_role":
        roles = cmd["roles"]
        if isinstance(prev, list):  # roles the user held before: revoking those would be a change
            roles = [r for r in roles if r not in prev]
            if not roles:
                return []
        inv.update(op="revoke_role", roles=roles)
    elif op == "revoke_role":
        roles = cmd["roles"]
        if isinstance(prev, list):
            roles = [r for r in roles if r in prev]
            if not roles:
                return []
        inv.update(op="grant_role", roles=roles)
    elif op == "create_user":
        inv = {k: v for k, v in cmd.items() if k not in ("pwd", "roles")}
        inv["op"] = "drop_user"
    elif op == "drop_user":
        if not isinstance(prev, dict) or not prev.get("pwd") or not prev.get("roles"):
            return None
        inv.update(op="create_user", pwd=prev["pwd"], roles=prev["roles"])
    elif op == "set_requirepass":
        if prev is None or not isinstance(prev, str):
            return None
        inv = {k: v for k, v in cmd.items() if k != "auth"}
        inv["pwd"] = prev
        if cmd["pwd"]:
            inv["auth"] = cmd["pwd"]
    else:
        return None
    params = {k: v for k, v in a.params.items() if k not in ("db_command", "previous")}
    params["db_command"] = inv
    return [Action(verb="exec", kind=a.kind, name=a.name, namespace=a.namespace, params=params,
                   reason=f"undo {op}")]


def undo_note(a: Action) -> tuple[bool, str]:
    """Whether the db op has a catalogued inverse, and what the executor must record for it."""
    op = a.params.get("db_command", {}).get("op")
    prev = previous(a)
    if op in ("grant_role", "revoke_role"):
        return True, f"undo: {DB_INVERSE_OP[op]} the same roles"
    if op == "create_user":
        return True, "undo: dropUser"
    if op == "drop_user":
        if isinstance(prev, dict) and prev.get("pwd") and prev.get("roles"):
            return True, "undo: createUser with the previous pwd and roles"
        return False, ("dropUser has no known inverse: the previous password cannot be read back "
                       "(pass params.previous={pwd, roles} if known)")
    if op == "set_requirepass":
        if prev is None:
            return True, ("undo: CONFIG SET requirepass <previous>; the executor must record the current "
                          "password (CONFIG GET requirepass) in params.previous before running")
        return True, "undo: CONFIG SET requirepass <previous>"
    return False, f"no known inverse for db op {op!r}"


def touches(a: Action, namespace: str) -> None:
    """No manifest changes: the undo log holds the inverse command instead of a snapshot."""
    return None


register(VerbSpec("exec", ("exec",), parse=parse, render=render, inverse=inverse, writes=writes_nothing,
                  undo_note=undo_note, touches=touches, after=cannot_compute, risky=True))
