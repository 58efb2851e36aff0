"""kubectl <-> Action: the write parser, renderer, inverse builder and guard STRATUS executes through.

Pure functions, no I/O. ``parse`` accepts only the small subset of kubectl that STRATUS can undo and
raises :class:`GuardError` (with a reason an LLM can act on) for everything else; ``render`` prints the
canonical form, and ``parse(render(a)) == a`` (ignoring ``reason``) for every supported action.

Inline manifest form (``apply`` / ``create``): shell heredocs are not run, so a manifest is passed in the
same string, on the lines after the command line::

    kubectl apply -n test-social-network -f -
    apiVersion: v1
    kind: Service
    metadata: {name: user-service}
    spec: ...

The first line must be exactly ``kubectl apply|create [-n NS] -f -``; everything after the first newline
is one YAML or JSON document (one object; no ``List``, no multi-document streams).

Catalogued ``kubectl exec`` commands (reversible database administration only) are parsed into
``params["db_command"]``; see ``DB_CATALOGUE``. Every other exec is refused.

Action.params per verb (exact shapes):

===============  ===========================================================================
scale            {"replicas": int}
patch            {"type": "json"|"merge"|"strategic", "patch": list (json) | dict}
set_image        {"images": {container: image}}
set_env          {"env": {KEY: VAL}, "remove": [KEY], "container"?: str}
set_resources    {"limits": {res: qty}, "requests": {res: qty}, "container"?: str}
rollout_undo     {} or {"to_revision": int}
rollout_restart  {}
delete           {} plus optional "grace_period": int, "wait": False
label, annotate  {"set": {key: value}, "remove": [key]}          (rendered with --overwrite)
cordon, uncordon {}
taint            {"add": [{"key", "value", "effect"}], "remove": [{"key", "effect"?}]}
apply, create    {"manifest": dict}
exec             {"db_command": {...}, "container"?: str}
===============  ===========================================================================

Layout (after kubectl's own ``pkg/cmd/<verb>/``): ``verbs/`` holds one module per verb or verb family,
each registering a same-shaped ``VerbSpec`` (parse, render, guard rules, inverse, touched object) in
``registry.VERBS``; ``commands`` and ``guard`` drive the registry; ``lex`` and ``args`` read command
lines; ``readonly`` classifies reads; the tables (allow-list, refusals, flags, read verbs, the database
catalogue, policy limits) are YAML files in ``data/`` loaded by ``tables``; ``identity`` holds the one check
that no verb changes an identity or reserved field (table: ``data/identity.yaml``). Kinds come from
``stratus.cluster.kinds``.
"""

from stratus.cluster.kinds import KINDS
from stratus.cluster.mutate import clean_manifest
from stratus.tools.kubectl.commands import RISKY_VERBS, inverse, inverse_supported, parse, render, touches
from stratus.tools.kubectl.guard import GuardVerdict, guard
from stratus.tools.kubectl.identity import current_in, identity_problem
from stratus.tools.kubectl.lex import GuardError
from stratus.tools.kubectl.readonly import is_read_only
from stratus.tools.kubectl.registry import VERBS, VerbSpec
from stratus.tools.kubectl.tables import (
    ALLOW_LIST,
    DANGEROUS_FLAGS,
    DB_CATALOGUE,
    DB_INVERSE_OP,
    DELETE_REFUSALS,
    POLICY,
    READ_ONLY_REASON,
    READ_ONLY_SUB,
    READ_ONLY_VERBS,
    VERB_REFUSALS,
)
from stratus.tools.kubectl.verbs.exec import state_read as db_state_read

__all__ = [
    "ALLOW_LIST",
    "DANGEROUS_FLAGS",
    "DB_CATALOGUE",
    "DB_INVERSE_OP",
    "DELETE_REFUSALS",
    "KINDS",
    "POLICY",
    "READ_ONLY_REASON",
    "READ_ONLY_SUB",
    "READ_ONLY_VERBS",
    "RISKY_VERBS",
    "VERBS",
    "VERB_REFUSALS",
    "GuardError",
    "GuardVerdict",
    "VerbSpec",
    "clean_manifest",
    "current_in",
    "db_state_read",
    "guard",
    "identity_problem",
    "inverse",
    "inverse_supported",
    "is_read_only",
    "parse",
    "render",
    "touches",
]
