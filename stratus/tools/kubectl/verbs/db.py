"""The database command catalogue behind ``kubectl exec``: parsing a container command into
``params["db_command"]`` and printing it back. Only the reversible commands listed in
``data/db_catalogue.yaml`` are accepted (mongo/mongosh user and role administration, valkey/redis
``CONFIG SET requirepass``); everything else is refused with the catalogue in the reason.

``state_read_command`` gives, for each of those commands, the catalogued read-only command (``getUser``,
``CONFIG GET requirepass``) that captures the state it can change before it runs.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from typing import Any

from stratus.cluster.dbshell import db_argv
from stratus.tools.kubectl.lex import GuardError, check_shell
from stratus.tools.kubectl.registry import q
from stratus.tools.kubectl.tables import DB_CATALOGUE, DB_STATE_READS, EXEC_REFUSAL

_DB_USER = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _JS:
    """A tiny parser for the JavaScript literals used in catalogued mongo shell calls."""

    def __init__(self, text: str):
        self.s, self.i = text, 0

    def ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise GuardError(f"unexpected JavaScript near {self.s[self.i:self.i + 20]!r}: expected {ch!r}. "
                             + EXEC_REFUSAL)
        self.i += 1

    def ident(self) -> str:
        self.ws()
        m = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*").match(self.s, self.i)
        if not m:
            raise GuardError(f"unexpected JavaScript near {self.s[self.i:self.i + 20]!r}. " + EXEC_REFUSAL)
        self.i = m.end()
        return m.group(0)

    def string(self) -> str:
        q = self.peek()
        if q not in ("'", '"'):
            raise GuardError(f"expected a quoted string near {self.s[self.i:self.i + 20]!r}")
        self.i += 1
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            if c == q:
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1
        raise GuardError("unterminated string in --eval")

    def value(self) -> Any:
        c = self.peek()
        if c in ("'", '"'):
            return self.string()
        if c == "[":
            self.i += 1
            items = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() != "]":
                    self.expect("]")
            self.i += 1
            return items
        if c == "{":
            self.i += 1
            obj: dict[str, Any] = {}
            while self.peek() != "}":
                key = self.string() if self.peek() in ("'", '"') else self.ident()
                self.expect(":")
                obj[key] = self.value()
                if self.peek() == ",":
                    self.i += 1
                elif self.peek() != "}":
                    self.expect("}")
            self.i += 1
            return obj
        m = re.compile(r"-?[0-9]+(\.[0-9]+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            return json.loads(m.group(0))
        word = self.ident()
        if word in ("true", "false"):
            return word == "true"
        raise GuardError(f"unsupported JavaScript value {word!r} in --eval. " + EXEC_REFUSAL)

    def call_args(self) -> list[Any]:
        self.expect("(")
        args = []
        while self.peek() != ")":
            args.append(self.value())
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != ")":
                self.expect(")")
        self.i += 1
        return args


def _roles(raw: Any, user_db: str) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise GuardError("roles must be a non-empty list like [{role:'readWrite',db:'geo-db'}]")
    allowed = DB_CATALOGUE["mongodb"]["roles"]
    out = []
    for r in raw:
        if isinstance(r, str):
            r = {"role": r, "db": user_db}
        if not isinstance(r, dict) or set(r) != {"role", "db"} or not all(isinstance(v, str) for v in r.values()):
            raise GuardError("each role must be {role:'<role>',db:'<db>'} or a role name")
        if r["role"] not in allowed:
            raise GuardError(f"role {r['role']!r} is not in the catalogue of grantable roles: {', '.join(allowed)}")
        if not _DB_NAME.match(r["db"]):
            raise GuardError(f"invalid database name {r['db']!r}")
        out.append({"role": r["role"], "db": r["db"]})
    return out


def _mongo_eval(js: str, default_db: str) -> dict[str, Any]:
    p = _JS(js.strip())
    if p.ident() != "db":
        raise GuardError(EXEC_REFUSAL)
    p.expect(".")
    method = p.ident()
    user_db = default_db
    if method == "getSiblingDB":
        args = p.call_args()
        if len(args) != 1 or not isinstance(args[0], str) or not _DB_NAME.match(args[0]):
            raise GuardError("getSiblingDB takes one database name")
        user_db = args[0]
        p.expect(".")
        method = p.ident()
    methods = DB_CATALOGUE["mongodb"]["methods"]
    if method not in methods:
        raise GuardError(f"mongo method {method!r} is not catalogued. " + EXEC_REFUSAL)
    op = methods[method]
    args = p.call_args()
    if p.peek() == ";":
        p.i += 1
    if p.peek():
        raise GuardError("exactly one catalogued mongo call per exec (nothing after it). " + EXEC_REFUSAL)
    cmd: dict[str, Any] = {"engine": "mongodb", "client": "mongo", "op": op}
    if op in ("grant_role", "revoke_role"):
        if len(args) != 2 or not isinstance(args[0], str):
            raise GuardError(f"usage: db.getSiblingDB('admin').{method}('<user>',[{{role:'readWrite',db:'<db>'}}])")
        cmd.update(user=args[0], user_db=user_db, roles=_roles(args[1], user_db))
    elif op == "drop_user":
        if len(args) != 1 or not isinstance(args[0], str):
            raise GuardError("usage: db.getSiblingDB('admin').dropUser('<user>')")
        cmd.update(user=args[0], user_db=user_db)
    else:
        if len(args) != 1 or not isinstance(args[0], dict) or set(args[0]) != {"user", "pwd", "roles"}:
            raise GuardError("usage: db.getSiblingDB('admin').createUser({user:'<u>',pwd:'<p>',roles:[...]}) "
                             "(exactly the keys user, pwd, roles)")
        spec = args[0]
        if not isinstance(spec["pwd"], str) or not spec["pwd"]:
            raise GuardError("createUser needs a non-empty pwd string")
        if not isinstance(spec["user"], str):
            raise GuardError("createUser needs a user string")
        cmd.update(user=spec["user"], user_db=user_db, pwd=spec["pwd"], roles=_roles(spec["roles"], user_db))
    if not _DB_USER.match(cmd["user"]):
        raise GuardError(f"invalid database user name {cmd['user']!r}")
    return cmd


def parse_db_command(argv: list[str]) -> dict[str, Any]:
    """The catalogued db_command for the argv after ``--`` (a client call, or one inside ``sh -c``)."""
    if not argv:
        raise GuardError(EXEC_REFUSAL)
    if argv[0] in ("sh", "bash", "/bin/sh", "/bin/bash") and len(argv) == 3 and argv[1] == "-c":
        inner = argv[2].strip()
        if "\n" in inner:
            raise GuardError("one command only inside sh -c")
        check_shell(inner)
        try:
            argv = shlex.split(inner)
        except ValueError as exc:
            raise GuardError(f"cannot tokenize the sh -c command ({exc})") from exc
        if not argv:
            raise GuardError(EXEC_REFUSAL)
    client, rest = argv[0], argv[1:]
    if client in DB_CATALOGUE["mongodb"]["clients"]:
        opts: dict[str, str] = {}
        positional: list[str] = []
        names = {"-u": "user", "--username": "user", "-p": "pwd", "--password": "pwd",
                 "--authenticationDatabase": "auth_db", "--eval": "eval"}
        i = 0
        while i < len(rest):
            a = rest[i]
            key, eq, val = a.partition("=") if a.startswith("--") else (a, "", "")
            if key in ("--quiet", "--norc"):
                i += 1
                continue
            if key in names:
                if not eq:
                    if i + 1 >= len(rest) or (rest[i + 1].startswith("-") and key != "--eval"):
                        raise GuardError(f"{key} needs a value (password prompts are interactive)")
                    val = rest[i + 1]
                    i += 1
                if names[key] in opts:
                    raise GuardError(f"{key} given twice")
                opts[names[key]] = val
            elif a.startswith("-"):
                raise GuardError(f"unsupported mongo option {key}: supported "
                                 + ", ".join(DB_CATALOGUE["mongodb"]["options"]))
            else:
                positional.append(a)
            i += 1
        if len(positional) > 1 or (positional and not _DB_NAME.match(positional[0])):
            raise GuardError("at most one positional argument (a database name) for the mongo shell")
        if "eval" not in opts:
            raise GuardError("the mongo shell needs --eval '<one catalogued call>' (interactive shells are not run)")
        conn_db = positional[0] if positional else "test"
        cmd = _mongo_eval(opts["eval"], conn_db)
        cmd["client"] = client
        if "user" in opts or "pwd" in opts:
            if "user" not in opts or "pwd" not in opts:
                raise GuardError("pass both -u <user> and -p <password> (password prompts are interactive)")
            auth_db = opts.get("auth_db", conn_db)
            if not _DB_NAME.match(auth_db):
                raise GuardError(f"invalid authentication database {auth_db!r}")
            cmd["auth"] = {"user": opts["user"], "pwd": opts["pwd"], "db": auth_db}
        elif "auth_db" in opts:
            raise GuardError("--authenticationDatabase needs -u and -p")
        return cmd
    if client in DB_CATALOGUE["valkey"]["clients"]:
        auth: str | None = None
        i = 0
        while i < len(rest) and rest[i].startswith("-"):
            a = rest[i]
            if a in ("-a", "--pass"):
                if i + 1 >= len(rest):
                    raise GuardError(f"{a} needs a password")
                auth = rest[i + 1]
                i += 2
            elif a == "--no-auth-warning":
                i += 1
            else:
                raise GuardError(f"unsupported {client} option {a}: supported -a <password>, --no-auth-warning")
        words = rest[i:]
        if len(words) != 4 or [w.lower() for w in words[:3]] != ["config", "set", "requirepass"]:
            raise GuardError(f"only `{client} CONFIG SET requirepass <password>` is catalogued. " + EXEC_REFUSAL)
        cmd = {"engine": "valkey", "client": client, "op": "set_requirepass", "pwd": words[3]}
        if auth is not None:
            cmd["auth"] = auth
        return cmd
    raise GuardError(EXEC_REFUSAL)


def _dq(s: str) -> str:
    """Double-quote when that is safe and more readable (JS with single quotes inside)."""
    if re.fullmatch(r'[^"$`\\!\n]*', s) and "'" in s:
        return f'"{s}"'
    return shlex.quote(s)


def state_read_command(cmd: dict[str, Any]) -> dict[str, Any]:
    """The read-only db_command that captures what ``cmd`` can change (same client, credentials, user)."""
    engine = cmd.get("engine") or ("valkey" if cmd["op"] == "set_requirepass" else "mongodb")
    keep = ("engine", "client", "auth") + (("user", "user_db") if engine == "mongodb" else ())
    read = {k: copy.deepcopy(cmd[k]) for k in keep if k in cmd}
    read.update(engine=engine, op=DB_STATE_READS[engine])
    return read


def render_db_command(cmd: dict[str, Any]) -> list[str]:
    """The container argv (already quoted) for a db_command."""
    try:
        argv = db_argv(cmd)
    except ValueError as exc:
        raise GuardError(str(exc)) from exc
    return [_dq(a) if i and argv[i - 1] == "--eval" else q(a) for i, a in enumerate(argv)]
