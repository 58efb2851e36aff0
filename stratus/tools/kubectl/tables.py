"""The kubectl tables, loaded from ``data/*.yaml``: allow-list, refusals, dangerous flags, read-only verbs,
the database command catalogue and the guard's policy limits.

Kubernetes kinds are not here: they live in ``stratus.cluster.kinds`` (one home for every layer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from stratus.cluster.kinds import CHAOS_KINDS, KINDS, WORKLOAD_KINDS

_DATA = Path(__file__).parent / "data"


def load(name: str) -> Any:
    """One table from ``data/`` (parsed YAML)."""
    return yaml.safe_load((_DATA / name).read_text())


def _expand(names: list[str], sets: dict[str, frozenset[str]]) -> frozenset[str]:
    """A kind list with ``$set`` references expanded; every kind must be a known Kubernetes kind."""
    out: set[str] = set()
    for name in names:
        if name.startswith("$"):
            out |= sets[name[1:]]
        elif name in KINDS:
            out.add(name)
        else:
            raise ValueError(f"data/allow_list.yaml names unknown kind {name!r}: add it to cluster/data/kinds.yaml")
    return frozenset(out)


def _allow_list() -> dict[str, frozenset[str]]:
    raw = load("allow_list.yaml")
    sets: dict[str, frozenset[str]] = {"workloads": WORKLOAD_KINDS, "chaos": frozenset(CHAOS_KINDS)}
    for name, kinds in raw["kind_sets"].items():
        sets[name] = _expand(kinds, sets)
    return {verb: _expand(kinds, sets) for verb, kinds in raw["allow_list"].items()}


ALLOW_LIST: dict[str, frozenset[str]] = _allow_list()
"""Action.verb -> the kinds the write parser accepts for it."""

_REFUSALS = load("refusals.yaml")
DELETE_REFUSALS: dict[str, str] = _REFUSALS["delete"]
"""Kind -> why ``kubectl delete`` on it is refused."""
VERB_REFUSALS: dict[str, str] = _REFUSALS["verbs"]
"""kubectl subcommand -> why it is never run as a write."""

_FLAGS = load("flags.yaml")
INTERACTIVE_REASON: str = _FLAGS["interactive"]["reason"]
DANGEROUS_FLAGS: dict[str, str] = {
    **{f: _FLAGS["credential"]["reason"] for f in _FLAGS["credential"]["flags"]},
    **{f: INTERACTIVE_REASON for f in _FLAGS["interactive"]["flags"]},
    **_FLAGS["other"],
}
"""Flag -> why the write parser refuses it (``{f}`` is replaced by the flag)."""

_READ_ONLY = load("read_only.yaml")
READ_ONLY_VERBS: frozenset[str] = frozenset(_READ_ONLY["verbs"])
READ_ONLY_SUB: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in _READ_ONLY["subcommands"].items()}
READ_ONLY_REASON: str = _READ_ONLY["reason"]
READ_VALUE_FLAGS: frozenset[str] = frozenset(_READ_ONLY["value_flags"])
READ_UNBOUNDED_FLAGS: frozenset[str] = frozenset(_READ_ONLY["unbounded"])

_DB = load("db_catalogue.yaml")
DB_CATALOGUE: dict[str, Any] = _DB["catalogue"]
"""Reversible database administration commands STRATUS may run through ``kubectl exec``."""
DB_INVERSE_OP: dict[str, str] = _DB["inverse_ops"]
DB_STATE_READS: dict[str, str] = _DB["state_reads"]
"""Engine -> the read-only op that captures the state a db_command can change (before it runs)."""
EXEC_REFUSAL: str = _DB["refusal"]

POLICY: dict[str, Any] = load("policy.yaml")
"""Policy limits used by ``guard`` (semantic checks on parsed actions)."""
