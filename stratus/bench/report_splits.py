"""The benchmark's splits: by failure family, by known versus new fault type, and by app.

A suite that can be won by a list of tricks scores well on the types it was written for and badly on
the rest; these splits show that, per agent, with the counts that matter for trust: mitigated, harm
left behind, false resolutions, escalations, and lucky fixes (mitigated without localising the cause).
Pure functions over run-scenario rows; rows from before these fields existed fall under ``unknown``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONTROL = "control"
MULTI = "multi-fault"
COUNTS = ("mitigated", "harm_left", "false_resolutions", "escalations", "lucky_fixes")


def _faulty(row: dict[str, Any]) -> bool:
    return any(not f.startswith("noop@") for f in row.get("faults") or [])


def family_of(row: dict[str, Any]) -> str:
    """The row's failure family; several faults make a ``multi-fault`` row, none a ``control``."""
    if not _faulty(row):
        return CONTROL
    if len([f for f in row.get("faults") or [] if not f.startswith("noop@")]) > 1:
        return MULTI
    fams = row.get("families")
    return fams[0] if fams else "unknown"


def novelty_of(row: dict[str, Any]) -> str:
    """``new`` when any fault is of a type added to widen the catalogue, ``known`` otherwise."""
    if not _faulty(row):
        return CONTROL
    if "new_fault_type" not in row:
        return "unknown"
    return "new" if row["new_fault_type"] else "known"


def app_of(row: dict[str, Any]) -> str:
    return str(row.get("app") or "unknown")


def cell(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts of one group of one agent's runs."""
    return {"n": len(rows),
            "mitigated": sum(bool(r.get("mitigated")) for r in rows),
            "harm_left": sum(bool(r.get("harm")) for r in rows),
            "false_resolutions": sum(bool(r.get("false_resolution")) for r in rows),
            "escalations": sum(bool(r.get("escalated") or r.get("outcome") == "escalated") for r in rows),
            "lucky_fixes": sum(bool(r.get("lucky_fix")) for r in rows)}


def split(rows: list[dict[str, Any]], agents: list[str], key: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """group -> agent -> counts, groups sorted with the control last."""
    groups = sorted({key(r) for r in rows}, key=lambda g: (g == CONTROL, g))
    return {g: {a: cell([r for r in rows if r["agent"] == a and key(r) == g]) for a in agents
                if any(r["agent"] == a and key(r) == g for r in rows)} for g in groups}


def splits(rows: list[dict[str, Any]], agents: list[str]) -> dict[str, Any]:
    """The three splits for ``summary.json``."""
    return {"by_family": split(rows, agents, family_of), "by_novelty": split(rows, agents, novelty_of),
            "by_app": split(rows, agents, app_of)}


def split_md(title: str, table: dict[str, Any], agents: list[str]) -> str:
    """One markdown table: a row per group, per agent ``mitigated/n`` then harm, false, escalated, lucky."""
    head = "| " + title + " | " + " | ".join(agents) + " |"
    lines = [head, "|---|" + "---:|" * len(agents)]
    for group, cells in table.items():
        out = []
        for a in agents:
            c = cells.get(a)
            out.append("" if c is None else f"{c['mitigated']}/{c['n']} · h{c['harm_left']} "
                                            f"f{c['false_resolutions']} e{c['escalations']} l{c['lucky_fixes']}")
        lines.append(f"| {group} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def splits_md(summary: dict[str, Any]) -> str:
    agents = list(summary["agents"])
    parts = ["## Split by family, by known versus new fault type, and by app", "",
             "Each cell: mitigated/runs · h harm left · f false resolutions · e escalations · l lucky fixes "
             "(mitigated although the reported root cause was not a faulty component). A run with several "
             "faults counts under multi-fault; known types are the original catalogue, new ones were added "
             "to cover the failure families (`stratus faults` lists both).", ""]
    for title, key in (("family", "by_family"), ("fault type", "by_novelty"), ("app", "by_app")):
        parts += [split_md(title, summary.get(key) or {}, agents), ""]
    return "\n".join(parts)
