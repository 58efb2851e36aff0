"""``is_read_only``: whether a command is one bounded kubectl read the read tools may run.

The read verbs, their flags and what makes a read unbounded are in ``data/read_only.yaml``.
"""

from __future__ import annotations

from stratus.tools.kubectl.args import kind_or_none
from stratus.tools.kubectl.lex import GuardError, split_command
from stratus.tools.kubectl.tables import (
    DANGEROUS_FLAGS,
    READ_ONLY_SUB,
    READ_ONLY_VERBS,
    READ_UNBOUNDED_FLAGS,
    READ_VALUE_FLAGS,
)


def is_read_only(command: str) -> bool:
    """True iff ``command`` is one bounded kubectl read (get/describe/logs/top/...) that changes nothing.

    Shell syntax, credential/context flags, watches/follows, and reading Secrets all make it False.
    """
    try:
        if not isinstance(command, str) or "\n" in command.strip():
            return False
        tokens, _ = split_command(command)
    except GuardError:
        return False
    verb: str | None = None
    idx = 1
    while idx < len(tokens):
        t = tokens[idx]
        key = t.split("=", 1)[0]
        if key in READ_UNBOUNDED_FLAGS or DANGEROUS_FLAGS.get(key, "").startswith("credential"):
            return False
        if verb is None:
            if t in ("-n", "--namespace"):
                idx += 2
                continue
            if not t.startswith("-"):
                verb = t
                rest = tokens[idx + 1:]
        idx += 1
    if verb is None:
        return False
    positional = []
    skip = False
    for t in rest:
        if skip:
            skip = False
        elif t in READ_VALUE_FLAGS:
            skip = True
        elif not t.startswith("-"):
            positional.append(t)
    if verb in READ_ONLY_VERBS:
        if verb == "cluster-info" and "dump" in positional:
            return False
        if verb == "diff":
            return False  # needs -f (a file); not a bounded read here
        for t in positional:
            for part in t.split("/")[0].split(","):
                if kind_or_none(part) == "Secret":
                    return False
        return True
    if verb in READ_ONLY_SUB:
        return bool(positional) and positional[0] in READ_ONLY_SUB[verb]
    return False
