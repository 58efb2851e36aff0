"""The drivers over the verb registry: ``parse`` (kubectl -> Action), ``render`` (Action -> kubectl),
``inverse`` and ``inverse_supported``. Each finds the verb's entry and hands over to it.
"""

from __future__ import annotations

from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.base import Ref
from stratus.tools.kubectl import verbs as _verbs  # noqa: F401  (fills the registry)
from stratus.tools.kubectl.lex import GuardError, first_positional, flag_reason, pop_sub, split_command
from stratus.tools.kubectl.registry import VERBS, VerbSpec
from stratus.tools.kubectl.tables import ALLOW_LIST, READ_ONLY_REASON, READ_ONLY_SUB, READ_ONLY_VERBS, VERB_REFUSALS

# kubectl word -> its entry ("scale") or its subcommands' entries ("set" -> {"image": ...}), registry order
_SINGLE: dict[str, VerbSpec] = {s.command[0]: s for s in VERBS.values() if len(s.command) == 1}
_FAMILIES: dict[str, dict[str, VerbSpec]] = {}
for _spec in VERBS.values():
    if len(_spec.command) == 2:
        _FAMILIES.setdefault(_spec.command[0], {})[_spec.command[1]] = _spec
_MANIFEST_WORDS = frozenset(s.command[0] for s in VERBS.values() if s.manifest_body)

_UNKNOWN = ("unknown or unsupported kubectl command {verb!r}; supported writes: scale, patch, set "
            "image|env|resources, rollout undo|restart, delete, label, annotate, cordon, uncordon, "
            "taint, apply -f -, create -f -, exec (catalogued db admin only)")


def parse(command: str) -> Action:
    """Parse one kubectl write command into an Action, or raise GuardError with an actionable reason."""
    tokens, body = split_command(command)
    ns_vals: list[str] = []
    i = 1
    while i < len(tokens) and tokens[i].startswith("-"):
        t = tokens[i]
        if t in ("-n", "--namespace"):
            if i + 1 >= len(tokens):
                raise GuardError(f"flag {t} needs a value")
            ns_vals.append(tokens[i + 1])
            i += 2
            continue
        if t.startswith("--namespace="):
            ns_vals.append(t.split("=", 1)[1])
        elif t.startswith("-n") and len(t) > 2:
            ns_vals.append(t[3:] if t[2] == "=" else t[2:])
        else:
            raise GuardError(flag_reason(t))
        i += 1
    if i >= len(tokens):
        raise GuardError("missing kubectl subcommand")
    verb, args = tokens[i], [*(f"--namespace={v}" for v in ns_vals), *tokens[i + 1:]]
    if body is not None and verb not in _MANIFEST_WORDS:
        raise GuardError("multi-line input: give exactly one kubectl command per call (only `kubectl apply|create"
                         " -f -` may be followed by an inline manifest)")
    if verb in READ_ONLY_VERBS:
        raise GuardError(READ_ONLY_REASON)
    spec = _SINGLE.get(verb)
    if spec is not None:
        return spec.parse(spec.verb, args, body)
    family = _FAMILIES.get(verb)
    if family is not None:
        sub, args = pop_sub(args, verb)
        if sub in READ_ONLY_SUB.get(verb, ()):
            raise GuardError(READ_ONLY_REASON)
        spec = family.get(sub)
        if spec is None:
            supported = ", ".join(f"{verb} {s}" for s in family)
            raise GuardError(f"`kubectl {verb} {sub}` is not supported; supported: {supported}")
        return spec.parse(spec.verb, args, body)
    if verb in READ_ONLY_SUB and first_positional(args) in READ_ONLY_SUB[verb]:
        raise GuardError(READ_ONLY_REASON)  # e.g. `kubectl auth can-i`
    if verb in VERB_REFUSALS:
        raise GuardError(VERB_REFUSALS[verb])
    raise GuardError(_UNKNOWN.format(verb=verb))


def render(action: Action) -> str:
    """The canonical kubectl command for an action (single line, except apply/create with a manifest)."""
    a = action if isinstance(action, Action) else Action.model_validate(action)
    try:
        return VERBS[a.verb].render(a)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, GuardError):
            raise
        raise GuardError(f"cannot render {a.verb} action: missing or malformed params ({exc!r})") from exc


def inverse(action: Action, before: dict[str, Any] | None) -> list[Action] | None:
    """Actions that undo ``action``, given the target's manifest before it (None: absent / unknown).

    Returns None when there is no known inverse (then the action must not run). Inverse actions are
    executed directly by the transaction machinery; some (e.g. deleting an object a transaction created)
    are deliberately outside the write parser's allow-list.
    """
    a = action if isinstance(action, Action) else Action.model_validate(action)
    return VERBS[a.verb].inverse(a, before)


def inverse_supported(action: Action) -> tuple[bool, str]:
    """Whether the verb/kind (and db op) pair has a catalogued inverse, with a note on what it needs."""
    a = action
    if a.verb not in ALLOW_LIST or a.kind not in ALLOW_LIST[a.verb]:
        return False, f"no known inverse for {a.verb} on {a.kind}"
    return VERBS[a.verb].undo_note(a)


def touches(action: Action, namespace: str) -> Ref | None:
    """The object whose manifest an action changes (None for exec), defaulting to ``namespace``."""
    return VERBS[action.verb].touches(action, namespace)


RISKY_VERBS: frozenset[str] = frozenset(s.verb for s in VERBS.values() if s.risky)
"""Verbs the "risky" approval mode asks a human about before running."""

