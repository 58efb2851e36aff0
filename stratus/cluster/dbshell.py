"""Catalogued database commands as container command lines, and their read-only answers parsed back.

A ``db_command`` (``Action.params["db_command"]``, made by the kubectl guard from the catalogue in
``stratus/tools/kubectl/data/db_catalogue.yaml``) runs in a database container as the client's own
command line: ``mongo [-u U -p P --authenticationDatabase DB] --eval "db.getSiblingDB('admin')...."``
or ``valkey-cli [-a P --no-auth-warning] CONFIG SET requirepass P``. ``db_argv`` is that argv, one
string per argument (the guard quotes it for display; ``KubeCluster`` sends it through ``pods/exec``).
``parse_state`` reads the answer of the state reads (``getUser``, ``CONFIG GET requirepass``) into the
shape ``Cluster.read_db`` returns.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SHELL_CALL = re.compile(r'\b[A-Za-z]+\(("(?:[^"\\]|\\.)*"|[^()"]*)\)')  # UUID("..."), NumberLong(5), ...


def js_str(s: str) -> str:
    """A single-quoted JavaScript string literal."""
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _js_roles(roles: list[dict[str, str]]) -> str:
    return "[" + ",".join(f"{{role:{js_str(r['role'])},db:{js_str(r['db'])}}}" for r in roles) + "]"


def mongo_eval(cmd: dict[str, Any]) -> str:
    """The one mongo shell call of a mongodb ``db_command`` (the ``--eval`` argument)."""
    op, db, user = cmd["op"], f"db.getSiblingDB({js_str(cmd['user_db'])})", js_str(cmd["user"])
    if op == "get_user":
        return f"{db}.getUser({user})"
    if op == "grant_role":
        return f"{db}.grantRolesToUser({user},{_js_roles(cmd['roles'])})"
    if op == "revoke_role":
        return f"{db}.revokeRolesFromUser({user},{_js_roles(cmd['roles'])})"
    if op == "create_user":
        return f"{db}.createUser({{user:{user},pwd:{js_str(cmd['pwd'])},roles:{_js_roles(cmd['roles'])}}})"
    if op == "drop_user":
        return f"{db}.dropUser({user})"
    raise ValueError(f"unknown db_command op {op!r}")


def is_valkey(cmd: dict[str, Any]) -> bool:
    return cmd.get("engine") == "valkey" or cmd["op"] in ("set_requirepass", "get_requirepass")


def db_argv(cmd: dict[str, Any]) -> list[str]:
    """The container argv of a catalogued ``db_command`` (unquoted: one list item per argument)."""
    op = cmd["op"]
    if is_valkey(cmd):
        out = [cmd.get("client", "valkey-cli")]
        if cmd.get("auth") is not None:
            out += ["-a", cmd["auth"], "--no-auth-warning"]
        if op == "get_requirepass":
            return out + ["CONFIG", "GET", "requirepass"]
        if op != "set_requirepass":
            raise ValueError(f"unknown db_command op {op!r}")
        return out + ["CONFIG", "SET", "requirepass", cmd["pwd"]]
    out = [cmd.get("client", "mongo")]
    if cmd.get("auth"):
        a = cmd["auth"]
        out += ["-u", a["user"], "-p", a["pwd"], "--authenticationDatabase", a["db"]]
    return out + ["--eval", mongo_eval(cmd)]


def parse_state(cmd: dict[str, Any], stdout: str) -> dict[str, Any]:
    """What a state read printed, as ``Cluster.read_db`` returns it.

    ``getUser`` prints ``null`` or the user document in the mongo shell's notation (after the shell's
    banner unless ``--quiet``): ``{"user", "db", "roles"}`` or ``{"user", "db", "absent": True}``.
    ``CONFIG GET requirepass`` prints the name and the value on two lines: ``{"requirepass": value}``.
    """
    lines = stdout.splitlines()
    if cmd["op"] == "get_requirepass":
        if not lines or lines[0].strip() != "requirepass":
            raise ValueError(f"unexpected CONFIG GET requirepass output: {stdout[:200]!r}")
        return {"requirepass": lines[1].strip() if len(lines) > 1 else ""}
    if cmd["op"] != "get_user":
        raise ValueError(f"{cmd['op']!r} is not a state read")
    who = {"user": cmd["user"], "db": cmd.get("user_db", "admin")}
    start = next((i for i, line in enumerate(lines) if line.strip() == "null" or line.startswith("{")), None)
    if start is None:
        raise ValueError(f"no user document in the mongo shell output: {stdout[:200]!r}")
    text = "\n".join(lines[start:]).strip()
    if text == "null":
        return {**who, "absent": True}
    doc = json.loads(_SHELL_CALL.sub(lambda m: m.group(1) if m.group(1).startswith('"') else json.dumps(m.group(1)),
                                     text))
    return {**who, "roles": [{"role": r["role"], "db": r["db"]} for r in doc.get("roles", [])]}


def redacted_argv(cmd: dict[str, Any]) -> list[str]:
    """``db_argv`` with every password replaced by ``***``, to name the command in messages and logs."""
    safe = dict(cmd)
    if isinstance(safe.get("auth"), dict):
        safe["auth"] = {**safe["auth"], "pwd": "***"}
    elif safe.get("auth") is not None:
        safe["auth"] = "***"
    if "pwd" in safe:
        safe["pwd"] = "***"
    return db_argv(safe)
