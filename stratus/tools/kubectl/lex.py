"""Reading a kubectl command line: shell-syntax refusal, tokenising, and flag scanning.

Everything here raises :class:`GuardError` with a reason an LLM can act on; nothing here knows a verb.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Literal, overload

from stratus.tools.kubectl.tables import DANGEROUS_FLAGS, INTERACTIVE_REASON


class GuardError(ValueError):
    """A command STRATUS will not run; ``reason`` says why and what to do instead."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_shell(line: str) -> None:
    """Refuse shell syntax: pipes, compound commands, redirection, substitution, expansion."""
    for ch in line:
        if (ord(ch) < 32 and ch != "\t") or ord(ch) == 127:
            raise GuardError("control characters are not allowed in a command")
    if line.lstrip().startswith("```"):
        raise GuardError("remove the Markdown code fence: give the bare kubectl command")
    q: str | None = None
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        nxt = line[i + 1] if i + 1 < n else ""
        if q == "'":
            if c == "'":
                q = None
        else:
            if c == "\\":
                i += 2
                continue
            if c == "`" or (c == "$" and nxt == "("):
                raise GuardError("command substitution ($(...) or backticks) is not allowed: write values "
                                 "literally")
            if c == "$" and nxt and (nxt in "{'_$?!#*@-" or nxt.isalnum()):
                raise GuardError("shell variable expansion ($VAR) is not available: write the value literally")
            if q == '"':
                if c == '"':
                    q = None
            elif c in "'\"":
                q = c
            elif c == "|":
                if nxt == "|":
                    raise GuardError("compound commands (||) are not allowed: one kubectl command per call")
                raise GuardError("pipes (|) are not allowed: one kubectl command per call")
            elif c == "&":
                if nxt == "&":
                    raise GuardError("compound commands (&&) are not allowed: one kubectl command per call")
                raise GuardError("background jobs (&) are not allowed: one kubectl command per call")
            elif c == ";":
                raise GuardError("compound commands (;) are not allowed: one kubectl command per call")
            elif c == "<":
                if nxt == "<":
                    raise GuardError("heredocs (<<) are shell syntax and are not run: write `kubectl apply -f -`"
                                     " on the first line and the manifest on the following lines")
                raise GuardError("input redirection (<) is not allowed")
            elif c == ">":
                raise GuardError("output redirection (> or >>) is not allowed")
            elif c in "()":
                raise GuardError("subshells and grouping ( ) are not allowed")
        i += 1


def split_command(command: str) -> tuple[list[str], str | None]:
    """The command line's tokens (starting with ``kubectl``) and the text after its first newline, if any."""
    if not isinstance(command, str):
        raise GuardError("command must be a string")
    text = command.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise GuardError("empty command")
    head, body = text, None
    while True:
        idx = head.find("\n")
        if idx < 0:
            break
        if idx > 0 and head[idx - 1] == "\\":  # line continuation on the command line
            head = head[:idx - 1] + " " + head[idx + 1:].lstrip(" \t")
            continue
        head, body = head[:idx], head[idx + 1:]
        break
    check_shell(head)
    try:
        tokens = shlex.split(head)
    except ValueError as exc:
        raise GuardError(f"cannot tokenize the command ({exc}): check the quoting") from exc
    if not tokens:
        raise GuardError("empty command")
    if tokens[0] != "kubectl":
        raise GuardError(f"commands must start with `kubectl` (got {tokens[0]!r}): aliases, sudo, env-var "
                         "prefixes and other programs are not run")
    return tokens, body


def flag_reason(tok: str) -> str:
    """Why an unexpected flag is refused (the dangerous-flag table's reason, else "unsupported")."""
    if tok.startswith("--"):
        key = tok.split("=", 1)[0]
    else:
        key = tok[:2]
        if len(tok) > 2 and set(tok[1:]) <= set("it"):
            return INTERACTIVE_REASON.format(f=tok)
    if key in DANGEROUS_FLAGS:
        return DANGEROUS_FLAGS[key].format(f=key)
    return f"unsupported flag {key}"


@dataclass
class Scan:
    """Arguments split by :func:`scan`: positionals, flag values by canonical name, and what follows ``--``."""

    pos: list[str] = field(default_factory=list)
    opts: dict[str, list[str]] = field(default_factory=dict)
    after: list[str] | None = None


_NS_FLAGS = {"-n": ("namespace", True), "--namespace": ("namespace", True)}


def scan(args: list[str], spec: dict[str, tuple[str | None, bool]], *, dashdash: bool = False) -> Scan:
    """Split args into positionals and flags. spec: flag -> (canonical name or None to ignore, takes_value)."""
    spec = {**_NS_FLAGS, **spec}
    out = Scan()
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            if not dashdash:
                raise GuardError("unexpected `--`")
            out.after = args[i + 1:]
            return out
        if not a.startswith("-") or a == "-":
            out.pos.append(a)
            i += 1
            continue
        val: str | None = None
        if a.startswith("--"):
            key, eq, v = a.partition("=")
            if eq:
                val = v
        else:
            key, rest = a[:2], a[2:]
            if rest:
                if key not in spec or not spec[key][1]:
                    raise GuardError(flag_reason(a))
                val = rest.removeprefix("=")
        if key not in spec:
            raise GuardError(flag_reason(a))
        canon, takes_value = spec[key]
        if takes_value:
            if val is None:
                if i + 1 >= len(args):
                    raise GuardError(f"flag {key} needs a value")
                val = args[i + 1]
                i += 1
        else:
            if val is None:
                val = "true"
            elif val.lower() not in ("true", "false"):
                raise GuardError(f"flag {key} takes true or false, got {val!r}")
            val = val.lower()
        if canon is not None:
            out.opts.setdefault(canon, []).append(val)
        i += 1
    if dashdash:
        raise GuardError("put `--` between the kubectl flags and the command to run in the container")
    return out


@overload
def one(s: Scan, name: str, flag: str, required: Literal[True]) -> str: ...
@overload
def one(s: Scan, name: str, flag: str, required: bool = False) -> str | None: ...
def one(s: Scan, name: str, flag: str, required: bool = False) -> str | None:
    """The single value of a flag (repeats must agree), or None when absent and not required."""
    vals = s.opts.get(name, [])
    if not vals:
        if required:
            raise GuardError(f"missing {flag}")
        return None
    if len(set(vals)) > 1:
        raise GuardError(f"conflicting values for {flag}: {', '.join(vals)}")
    return vals[0]


def pop_sub(args: list[str], verb: str) -> tuple[str, list[str]]:
    """The subcommand of `set`/`rollout`, skipping namespace flags placed before it."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--namespace"):
            i += 2
            continue
        if a.startswith("--namespace=") or (a.startswith("-n") and len(a) > 2):
            i += 1
            continue
        if a.startswith("-"):
            raise GuardError(flag_reason(a))
        return a, args[:i] + args[i + 1:]
    raise GuardError(f"missing subcommand for kubectl {verb}")


def to_int(value: str, flag: str) -> int:
    """A flag's non-negative integer value."""
    if not re.fullmatch(r"[0-9]{1,9}", value.strip()):
        raise GuardError(f"{flag} must be a non-negative integer, got {value!r}")
    return int(value)


def first_positional(args: list[str]) -> str | None:
    """The first positional argument, skipping the values of -n and -f."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--namespace", "-f", "--filename"):
            i += 2
            continue
        if not a.startswith("-") or a == "-":
            return a
        i += 1
    return None
