"""The arguments of a write: resource types and names, the target object, namespaces, KEY=VALUE lists,
label keys, container names, and inline YAML/JSON documents. Shared by every verb's parser.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

import yaml

from stratus.cluster.actions import Action
from stratus.cluster.kinds import KINDS
from stratus.tools.kubectl.lex import GuardError, Scan, one
from stratus.tools.kubectl.tables import ALLOW_LIST, DELETE_REFUSALS

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_MAX_MANIFEST_CHARS = 200_000
_MAX_NODES = 50_000
_NO_INVERSE = "no safe inverse"

_ALIASES: dict[str, str] = {}
for _k, _spec in KINDS.items():
    for _a in [*_spec["aliases"], _k.lower()]:
        _ALIASES[_a] = _k


def kind_or_none(token: str) -> str | None:
    """The canonical kind for a resource type (alias, or ``type.version.group``), or None if unknown."""
    t = token.lower()
    if t in _ALIASES:
        return _ALIASES[t]
    if "." in t:
        base, _, group = t.partition(".")
        group = re.sub(r"^v[0-9]+((alpha|beta)[0-9]+)?\.", "", group)
        kind = _ALIASES.get(base)
        if kind is not None and KINDS[kind]["group"] == group:
            return kind
    return None


def kind_of(token: str) -> str:
    """One known resource type (no comma lists)."""
    if "," in token:
        raise GuardError("one resource type per command (no comma lists): name exactly one object")
    kind = kind_or_none(token)
    if kind is None:
        raise GuardError(f"unknown resource type {token!r}")
    return kind


def check_name(name: str, kind: str) -> str:
    """An object name, checked as a lower-case DNS subdomain."""
    if not name:
        raise GuardError(f"empty {kind} name")
    if "=" in name or name.startswith("-"):
        raise GuardError(f"expected a {kind} name, got {name!r}: name the object before any KEY=VALUE")
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        raise GuardError(f"invalid {kind} name {name!r} (lower-case DNS name expected)")
    return name


def target(pos: list[str], verb: str, default_kind: str | None = None) -> tuple[str, str, list[str]]:
    """The one object a command names (``type/name`` or ``type name``): kind, name and the remaining positionals."""
    if not pos:
        raise GuardError(f"name the object: kubectl {verb} <type>/<name>")
    first = pos[0]
    if "/" in first:
        typ, _, name = first.partition("/")
        kind, rest = kind_of(typ), pos[1:]
    elif default_kind is not None:
        kind, name, rest = default_kind, first, pos[1:]
    else:
        kind = kind_of(first)
        if len(pos) < 2:
            raise GuardError(f"name exactly one {kind}: kubectl {verb} {first} <name> (acting on every "
                             f"{kind} is not allowed)")
        name, rest = pos[1], pos[2:]
    return kind, check_name(name, kind), rest


def no_extra(rest: list[str]) -> None:
    """Refuse positionals after the object."""
    if rest:
        raise GuardError(f"one object per command: unexpected argument {rest[0]!r}")


def check_kind(verb: str, kind: str) -> None:
    """Refuse a kind that is not on the verb's allow-list, saying which kinds are."""
    if kind in ALLOW_LIST[verb]:
        return
    if verb == "delete" and kind in DELETE_REFUSALS:
        raise GuardError(DELETE_REFUSALS[kind])
    shown = verb.replace("_", " ")
    allowed = ", ".join(sorted(ALLOW_LIST[verb]))
    raise GuardError(f"kubectl {shown} on {kind} is not allowed ({_NO_INVERSE} or not a fix); allowed kinds: "
                     f"{allowed}")


def namespace_of(kind: str, values: list[str]) -> str | None:
    """The one namespace the -n values agree on (None for cluster-scoped kinds or when absent)."""
    if any(not v for v in values):
        raise GuardError("empty namespace: use -n <namespace>")
    uniq = list(dict.fromkeys(values))
    if len(uniq) > 1:
        raise GuardError(f"conflicting namespaces: {', '.join(uniq)}")
    if not KINDS[kind]["namespaced"]:
        return None
    if not uniq:
        return None
    ns = uniq[0]
    if len(ns) > 63 or not DNS_LABEL.match(ns):
        raise GuardError(f"invalid namespace {ns!r}")
    return ns


def _plain(value: Any, counter: list[int] | None = None) -> Any:
    """JSON-plain copy of YAML/JSON data: dates become ISO strings; keys must be strings; bounded size."""
    counter = counter if counter is not None else [0]
    counter[0] += 1
    if counter[0] > _MAX_NODES:
        raise GuardError("document too large (or uses YAML alias expansion)")
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise GuardError(f"non-string key {k!r} in document")
            out[k] = _plain(v, counter)
        return out
    if isinstance(value, list):
        return [_plain(v, counter) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise GuardError(f"unsupported value type {type(value).__name__} in document")


def load_doc(text: str, what: str) -> Any:
    """One JSON or YAML document, as plain JSON data."""
    if len(text) > _MAX_MANIFEST_CHARS:
        raise GuardError(f"{what} too large")
    try:
        return _plain(json.loads(text))
    except ValueError:
        pass
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise GuardError(f"{what} is neither valid JSON nor valid YAML: {str(exc).splitlines()[0]}") from exc
    if len(docs) != 1:
        raise GuardError(f"{what} must be exactly one document (got {len(docs)})")
    return _plain(docs[0])


def make_action(verb: str, kind: str, name: str, ns: list[str], params: dict[str, Any]) -> Action:
    """The parsed Action, with its namespace resolved from the -n values."""
    return Action(verb=verb, kind=kind, name=name, namespace=namespace_of(kind, ns), params=params)


def assignments(rest: list[str], what: str) -> tuple[dict[str, str], list[str]]:
    """KEY=VALUE and KEY- arguments: the keys to set and the keys to remove."""
    sets: dict[str, str] = {}
    removes: list[str] = []
    for tok in rest:
        if "=" in tok:
            k, _, v = tok.partition("=")
            if k in sets and sets[k] != v:
                raise GuardError(f"{what} {k!r} given twice")
            sets[k] = v
        elif tok.endswith("-") and len(tok) > 1:
            removes.append(tok[:-1])
        else:
            raise GuardError(f"unexpected argument {tok!r}: expected KEY=VALUE or KEY- (one object per command)")
    overlap = set(sets) & set(removes)
    if overlap:
        raise GuardError(f"{what} {min(overlap)!r} both set and removed")
    return sets, removes


def container_flag(s: Scan) -> str | None:
    """The -c/--containers value (one container name, or ``*``)."""
    c = one(s, "container", "-c/--containers")
    if c is None:
        return None
    if c != "*" and not DNS_LABEL.match(c):
        raise GuardError(f"invalid container name {c!r} (one container per command)")
    return c


def label_key(k: str) -> None:
    """Refuse an invalid label/annotation/taint key (``[prefix/]name``)."""
    prefix, slash, name = k.rpartition("/")
    if (slash and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix))) \
            or len(name) > 63 or not _QUALIFIED.match(name):
        raise GuardError(f"invalid key {k!r}")
