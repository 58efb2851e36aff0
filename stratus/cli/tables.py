"""Rich tables the commands print: a run's result, the benchmark summary, the fault catalogue and the
incidents in a checkpoint store.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from stratus.cli.common import console


def print_result(result: dict[str, Any], title: str) -> None:
    """One run-scenario object as a two-column table (booleans green or red, lists one item a line)."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in result.items():
        if isinstance(value, bool):
            text = f"[green]{value}[/]" if value else f"[red]{value}[/]"
        elif isinstance(value, list):
            text = escape("\n".join(map(str, value))) if value else "[]"
        else:
            text = escape(str(value))
        table.add_row(key, text)
    console.print(table)


def print_summary(summary: dict[str, Any]) -> None:
    """The benchmark's summary.json as two tables: metrics per agent, then mitigated per fault type."""
    from stratus.bench.report import AGENT_COLUMNS

    agents = list(summary["agents"])
    table = Table(title="per agent", title_justify="left")  # metrics as rows: fits 80 columns
    table.add_column("metric", style="bold", no_wrap=True)
    for a in agents:
        table.add_column(a, justify="right")
    for key, label, fmt in AGENT_COLUMNS:
        table.add_row(label, *(fmt(summary["agents"][a].get(key)) for a in agents))
    console.print(table)
    table = Table(title="mitigated per fault type", title_justify="left")
    table.add_column("fault type", no_wrap=True)
    for a in agents:
        table.add_column(a, justify="right")
    for t, cells in summary["by_fault_type"].items():
        table.add_row(t, *(f"{cells[a]['mitigated']}/{cells[a]['n']}" if a in cells else "" for a in agents))
    console.print(table)


def labels(row: dict[str, Any]) -> str:
    """A fault's AIOpsLab labels, ``system level / fault type``, or ``-``."""
    return " / ".join(x for x in (row["system_level"], row["fault_type"]) if x) or "-"


def print_faults(rows: list[dict[str, Any]]) -> None:
    """The fault catalogue as a table, with the legend of the target kinds."""
    table = Table(title=f"Fault catalogue ({len(rows)} types)", title_justify="left", show_lines=True)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("targets", no_wrap=True)
    for col in ("params", "AIOpsLab labels", "summary"):
        table.add_column(col, overflow="fold")
    for r in rows:
        params = "\n".join(f"{k}: {v}" for k, v in r["params"].items()) or "-"
        where = f"{r['targets']}\n{r.get('family', '')}{' (new)' if r.get('new') else ''}"
        table.add_row(r["name"], where, escape(params), labels(r), escape(r["summary"]))
    console.print(table)
    console.print("[dim]targets: app = an application service, database = a MongoDB, any = any component, "
                  "none = no target; under it the failure family, (new) for types added to widen the catalogue[/]")


def print_incidents(rows: list[dict[str, Any]], db: str) -> None:
    """``stratus log --list``: one line per incident, latest checkpoint first."""
    table = Table(title=f"incidents in {db}", title_justify="left")
    table.add_column("incident", no_wrap=True, style="bold")
    for col in ("last checkpoint", "namespace", "outcome", "tx", "undone"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["incident_id"], str(r["created_at"] or "")[:19].replace("T", " "),
                      str(r["namespace"] or ""),
                      str(r["outcome"] or ""), str(r["transactions"]), str(r["rollbacks"]))
    console.print(table)
