"""``stratus faults``: the fault catalogue, listed from the injectors' registry (``twin.faults.REGISTRY``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from stratus.cli.tables import labels, print_faults


def _print_markdown(rows: list[dict[str, Any]]) -> None:
    """The fault catalogue as the README's markdown table (plain print: no rich markup)."""
    def cell(text: str) -> str:
        return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")

    print("| fault | family | targets | params (defaults) | AIOpsLab labels | what it does |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        params = "<br>".join(f"`{k}`: {cell(v)}" for k, v in r["params"].items()) or "-"
        family = r["family"] + (" (new)" if r["new"] else "")
        print(f"| `{r['name']}` | {family} | {r['targets']} | {params} | {labels(r)} | {cell(r['summary'])} |")


def faults(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's markdown table.")] = False,
) -> None:
    """List the fault catalogue: name, family (new: added to widen the catalogue), valid targets,
    parameters and defaults, AIOpsLab labels."""
    from stratus.twin.faults import REGISTRY

    rows = [{"name": s.name, "targets": s.targets, "params": s.params, "defaults": s.defaults,
             "system_level": s.system_level, "fault_type": s.fault_type, "summary": s.summary,
             "family": s.family, "new": s.new}
            for s in REGISTRY.values()]
    if as_json:
        print(json.dumps(rows, indent=2))
    elif markdown:
        _print_markdown(rows)
    else:
        print_faults(rows)
