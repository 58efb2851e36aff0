"""``kubectl exec <pod>|<workload> [-c container] -- <catalogued db command>``.

Params ``{"db_command": {...}, "container"?: str}`` (see ``verbs/db.py``). Database state is not a
manifest: before the change the transaction captures it with the catalogued read (``state_read``: the
user's roles, the current password) through ``Cluster.read_db``, and the undo is the inverse command
derived from that capture (``inverse``). A dropped user's password cannot be read back: it must be
given in ``params.previous`` or the guard refuses the drop.
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
from stratus.tools.kubectl.verbs.db import parse_db_command, render_db_command, state_read_command


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


def state_read(a: Action) -> Action:
    """The read-only exec (``getUser``, ``CONFIG GET requirepass``) that captures what ``a`` can change.

    ``Cluster.read_db`` runs it before the change; its result is the ``before`` of ``inverse``."""
    params = {k: v for k, v in a.params.items() if k not in ("db_command", "previous")}
    params["db_command"] = state_read_command(a.params["db_command"])
    return Action(verb="exec", kind=a.kind, name=a.name, namespace=a.namespace, params=params,
                  reason="capture the database state before the change")


def inverse(a: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """The catalogued db command that undoes ``a``, derived from the state captured before it ran.

    ``before`` is what ``state_read`` returned: ``{"user", "db", "roles"}`` or ``{"user", "db",
    "absent": True}`` for mongo, ``{"requirepass": str}`` for valkey; None (nothing captured) gives no
    inverse, because any undo would be a guess about a database nobody looked at. Only what the command
    can actually have changed is undone: a grant of a role the user already held, or a createUser for an
    account that already existed (it fails), has nothing to undo.
    """
    if before is None:
        return None
    cmd = {k: v for k, v in a.params["db_command"].items() if k != "previous"}
    op = cmd["op"]
    held = None if before.get("absent") else before.get("roles")
    inv = copy.deepcopy(cmd)
    if op in ("grant_role", "revoke_role"):
        if not isinstance(held, list):
            return []  # no such user: the command fails and changes nothing
        roles = [r for r in cmd["roles"] if (r in held) == (op == "revoke_role")]
        if not roles:
            return []
        inv.update(op=DB_INVERSE_OP[op], roles=roles)
    elif op == "create_user":
        if held is not None:
            return []  # the account exists: createUser fails, and dropping it would destroy it
        inv = {k: v for k, v in cmd.items() if k not in ("pwd", "roles")}
        inv["op"] = "drop_user"
    elif op == "drop_user":
        if held is None:
            return []
        prev = previous(a)
        pwd = prev.get("pwd") if isinstance(prev, dict) else prev
        if not isinstance(pwd, str) or not pwd or not held:
            return None
        inv.update(op="create_user", pwd=pwd, roles=held)
    elif op == "set_requirepass":
        prev = before.get("requirepass")
        if not isinstance(prev, str):
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
    """Whether the db op has a catalogued inverse, and what the transaction must capture for it."""
    op = a.params.get("db_command", {}).get("op")
    prev = previous(a)
    if op in ("grant_role", "revoke_role"):
        return True, f"undo: {DB_INVERSE_OP[op]} the roles the change added or removed (getUser before it)"
    if op == "create_user":
        return True, "undo: dropUser, only if getUser found no such account before the change"
    if op == "drop_user":
        pwd = prev.get("pwd") if isinstance(prev, dict) else prev
        if isinstance(pwd, str) and pwd:
            return True, "undo: createUser with the previous pwd and the roles getUser read before the change"
        return False, ("dropUser has no known inverse: the previous password cannot be read back "
                       "(pass params.previous={pwd} if known)")
    if op == "set_requirepass":
        return True, "undo: CONFIG SET requirepass <previous> (CONFIG GET requirepass reads it before the change)"
    return False, f"no known inverse for db op {op!r}"


def touches(a: Action, namespace: str) -> None:
    """No manifest changes: the undo log holds the inverse command instead of a snapshot."""
    return None


register(VerbSpec("exec", ("exec",), parse=parse, render=render, inverse=inverse, writes=writes_nothing,
                  undo_note=undo_note, touches=touches, after=cannot_compute, risky=True))
