"""The identity check: no write may change what names an object or what Kubernetes, its controllers or
STRATUS rely on (the per-kind table in ``data/identity.yaml``).

One check for every verb, on the change the verb would make:

- when the object as it is now is known (``current``) and the verb's entry can compute the object after it
  (``VerbSpec.after``), the protected fields are compared before and after;
- otherwise the paths the verb writes (``VerbSpec.writes``: json patch paths, merge patch leaves, label
  keys, ...) are checked against the protected fields, refusing any write that reaches into one or
  replaces a parent of one.

Objects the table protects by name (the STRATUS write lock) may not be written by any verb.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratus.cluster.actions import Action
from stratus.cluster.kinds import KINDS
from stratus.tools.kubectl.commands import touches
from stratus.tools.kubectl.registry import VERBS, FieldPath
from stratus.tools.kubectl.tables import load

_MISSING = object()


@dataclass(frozen=True)
class Field:
    """One protected field of a kind (see ``data/identity.yaml`` for the meaning of each attribute)."""

    path: FieldPath
    keys: str | frozenset[str] | None
    item_key: str | None
    server_set: bool
    why: str
    instead: str

    def name(self, key: str | None = None) -> str:
        """The field as the refusal names it: ``metadata.labels['kubernetes.io/hostname']``."""
        dotted = ".".join(self.path)
        return dotted if key is None else f"{dotted}[{key!r}]"


def _table() -> tuple[tuple[str, ...], dict[str, list[Field]], dict[str, dict[str, str]]]:
    raw = load("identity.yaml")
    fields: dict[str, list[Field]] = {}
    objects: dict[str, dict[str, str]] = {}
    for kind, entry in raw["kinds"].items():
        if kind != "*" and kind not in KINDS:
            raise ValueError(f"data/identity.yaml names unknown kind {kind!r}: add it to cluster/data/kinds.yaml")
        keys = [f.get("keys") for f in entry.get("fields", [])]
        fields[kind] = [Field(path=tuple(f["path"].split(".")),
                              keys=frozenset(k) if isinstance(k, list) else k,
                              item_key=f.get("item_key"), server_set=bool(f.get("server_set")),
                              why=f["why"], instead=f["instead"])
                        for f, k in zip(entry.get("fields", []), keys, strict=True)]
        objects[kind] = dict(entry.get("objects") or {})
    return tuple(raw["reserved_domains"]), fields, objects


RESERVED_DOMAINS, FIELDS, OBJECTS = _table()
"""The reserved label domains; kind -> its protected fields (``"*"``: every kind); kind -> protected objects."""


def reserved(key: str) -> bool:
    """Whether a label, annotation or taint key is under a reserved Kubernetes domain (or a subdomain)."""
    prefix = key.rpartition("/")[0]
    return any(prefix == d or prefix.endswith("." + d) for d in RESERVED_DOMAINS)


def fields_of(kind: str) -> list[Field]:
    """The protected fields of a kind, the common ones first."""
    return [*FIELDS.get("*", []), *FIELDS.get(kind, [])]


def _get(obj: Any, path: FieldPath) -> Any:
    for seg in path:
        if not isinstance(obj, dict) or seg not in obj:
            return _MISSING
        obj = obj[seg]
    return obj


def selector_keys(manifest: dict[str, Any]) -> frozenset[str]:
    """The label keys a workload's ``spec.selector`` matches (matchLabels and matchExpressions)."""
    sel = _get(manifest, ("spec", "selector"))
    if not isinstance(sel, dict):
        return frozenset()
    exprs = [e.get("key") for e in sel.get("matchExpressions") or [] if isinstance(e, dict)]
    return frozenset([*(sel.get("matchLabels") or {}), *(k for k in exprs if isinstance(k, str))])


def _matches(f: Field, key: str, selector: frozenset[str] | None) -> bool:
    """Whether key is a protected key of f (``selector`` None: the selector is unknown, so every key may be)."""
    if f.keys == "reserved":
        return reserved(key)
    if f.keys == "selector":
        return selector is None or key in selector
    return f.keys is None or key in f.keys


def _values(f: Field, manifest: dict[str, Any], selector: frozenset[str]) -> dict[str | None, Any]:
    """Protected key (None for a whole field) -> its value in manifest; absent fields and keys are left out."""
    base = _get(manifest, f.path)
    if base is _MISSING:
        return {}
    if f.keys is None:
        return {None: base}
    if f.item_key is not None:
        groups: dict[str, list[Any]] = {}
        for item in base if isinstance(base, list) else []:
            if isinstance(item, dict) and isinstance(item.get(f.item_key), str):
                groups.setdefault(item[f.item_key], []).append(item)
        items: dict[str, Any] = groups
    else:
        items = base if isinstance(base, dict) else {}
    return {k: v for k, v in items.items() if _matches(f, k, selector)}


def changed(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[tuple[Field, str | None]]:
    """The protected fields (and keys) whose value differs between two manifests of one object.

    Server-assigned fields left out of ``after`` are kept by the API server, so they do not count.
    """
    selector = selector_keys(before)
    hits = []
    for f in fields_of(kind):
        old, new = _values(f, before, selector), _values(f, after, selector)
        if f.server_set and not new:
            continue
        hits += [(f, k) for k in {**old, **new} if old.get(k, _MISSING) != new.get(k, _MISSING)]
    return hits


def reached(kind: str, writes: list[FieldPath]) -> list[tuple[Field, str | None]]:
    """The protected fields (and keys) a list of written paths reaches, the object's state unknown.

    A write reaches a field when it is inside it (for keyed fields: under a protected key; a list index
    or ``-`` could be any key) or replaces it together with a parent.
    """
    hits: list[tuple[Field, str | None]] = []
    for w in writes:
        for f in fields_of(kind):
            n = len(f.path)
            if w[:n] != f.path and w == f.path[:len(w)]:
                hits.append((f, None))
            elif w[:n] == f.path:
                if len(w) == n or f.keys is None:
                    hits.append((f, None))
                elif _matches(f, w[n], None) or (f.item_key is not None and (w[n] == "-" or w[n].isdigit())):
                    hits.append((f, w[n]))
    return hits


def _refusal(a: Action, hits: list[tuple[Field, str | None]], known: bool) -> str:
    f, key = hits[0]
    what = f.name(key) if key is not None or f.keys is None else f"{f.name()} (its protected keys)"
    how = "changes" if known else "may change"
    unknown = "" if known else " (it writes there, and the object as it is now was not given)"
    return (f"this {a.verb} {how} {what} of {a.kind}/{a.name}{unknown}, a protected identity field: {f.why}. "
            f"Instead: {f.instead}")


def current_in(a: Action, snapshot: list[dict[str, Any]], namespace: str) -> dict[str, Any] | None:
    """The manifest of the object an action touches in a transaction's snapshot (None: not in it).

    Each action of a plan is judged against the object as the plan found it, so its own change is what
    the identity check sees.
    """
    ref = touches(a, namespace)
    if ref is None:
        return None
    kind, name, ns = ref
    for m in snapshot:
        meta = m.get("metadata") or {}
        if m.get("kind") == kind and meta.get("name") == name and (kind == "Node" or meta.get("namespace") == ns):
            return m
    return None


def identity_problem(a: Action, current: dict[str, Any] | None = None) -> str | None:
    """Why the action would change an identity or reserved field of its object, or None.

    Args:
        a: the parsed action.
        current: the object as it is now (a snapshot manifest; ``absent`` marks one that does not exist),
            when the caller has it; without it, the written paths are checked instead.
    """
    why = OBJECTS.get(a.kind, {}).get(a.name)
    if why is not None:
        return f"{a.kind}/{a.name} is protected: {why}. Instead: leave it to STRATUS"
    spec = VERBS[a.verb]
    if current is not None and current.get("absent"):
        return None  # the write creates the object: its identity is being defined, not changed
    after = spec.after(a, current) if current is not None else None
    if current is not None and after is not None:
        hits, known = changed(a.kind, current, after), True
    else:
        hits, known = reached(a.kind, spec.writes(a)), False
    return _refusal(a, hits, known) if hits else None
