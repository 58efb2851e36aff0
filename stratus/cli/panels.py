"""Rich panels: the demo's incident report, the approval request, and ``stratus log``'s transaction log.

Also the short text forms of a health report and a hypothesis that the timeline and the tables share.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from stratus.cli.common import console, default_db


def health_text(report: dict[str, Any] | None) -> str:
    """``H`` with its parts and the unhealthy count, to three and two decimals (timeline form)."""
    if not report:
        return "n/a"
    return (f"H={report['H']:.3f} (A={report['availability']:.2f} E={report['error_ratio']:.2f} "
            f"L={report['latency_norm']:.2f}, {len(report.get('unhealthy') or [])} unhealthy)")


def hypothesis_text(h: dict[str, Any] | None) -> str:
    """``fault_class @ component (confidence)``."""
    if not h:
        return "?"
    return f"{h.get('fault_class')} @ {h.get('component')} ({float(h.get('confidence') or 0):.2f})"


def health_row(h: dict[str, Any] | None) -> str:
    """``H`` with its parts and the unhealthy count, to four and three decimals (log form)."""
    if not h:
        return "-"
    return (f"H={h['H']:.4f}  A={h['availability']:.3f} E={h['error_ratio']:.3f} L={h['latency_norm']:.3f}  "
            f"unhealthy={len(h.get('unhealthy') or [])}")


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    return grid


def report_panel(row: dict[str, Any], state: dict[str, Any], *, fault: str, wall_s: float, sim_s: float,
                 db: str) -> Panel:
    """The demo's closing panel.

    Args:
        row: the graded run-scenario object of the run.
        state: the incident's final graph state (its report and transactions).
        fault: the injected fault as ``type@target``.
        wall_s: wall seconds of the whole demo.
        sim_s: simulated seconds since the injection.
        db: the checkpoint store, to print the matching ``stratus log`` command.
    """
    report = state.get("report") or {}
    txs = state.get("transactions") or []
    committed = [t for t in txs if t["status"] == "committed"]
    grid = _grid()
    colour = {"resolved": "green", "no_incident": "green"}.get(row["outcome"], "yellow")
    grid.add_row("outcome", f"[{colour}]{row['outcome']}[/]")
    grid.add_row("summary", escape(report.get("summary", "")))
    rc = report.get("root_cause")
    if rc:
        labels = " / ".join(x for x in (rc.get("system_level"), rc.get("fault_type")) if x)
        grid.add_row("root cause", escape(f"{rc.get('fault_class')} at {rc.get('component')}"
                                          + (f"  [{labels}]" if labels else "")))
    fixes = [k for t in committed for k in t["kubectl"]]
    grid.add_row("fixes", escape("\n".join(fixes)) if fixes else "none committed")
    h0, h1 = row["health_initial"], row["health_final"]
    if h0 is not None and h1 is not None:
        grid.add_row("health", f"H {h0:.3f} -> {h1:.3f}")
    grid.add_row("transactions", f"{len(txs)} ({len(committed)} committed, "
                                 f"{report.get('rollbacks', 0)} rolled back)")
    grid.add_row("TNR", "[bold red]VIOLATED[/]" if row["tnr_violations"] else "[green]held[/]")
    grid.add_row("ground truth", escape(f"{fault}: oracle says {'mitigated' if row['mitigated'] else 'NOT mitigated'}"
                                        f" ({'; '.join(row['oracle'])})"))
    grid.add_row("time", f"{sim_s:.0f} s simulated, {wall_s:.1f} s wall")
    db_flag = "" if db == default_db() else f" --db {db}"
    incident = row["incident_id"]
    grid.add_row("incident", f"{incident}   [dim](stratus log {incident}{db_flag})[/]")
    return Panel(grid, title="incident report", border_style=colour, expand=False)


def ask_approval(payload: Any, out: Console | None = None) -> str:
    """Show the approval request and read the answer (on ``out``: stderr when stdout carries JSON)."""
    out = out or console
    grid = _grid()
    if isinstance(payload, dict):
        hyp = payload.get("hypothesis") or {}
        grid.add_row("hypothesis", escape(hypothesis_text(hyp)))
        if hyp.get("summary"):
            grid.add_row("", escape(str(hyp["summary"])))
        if hyp.get("expect"):
            grid.add_row("expected", escape(str(hyp["expect"])))
        for i, item in enumerate(payload.get("actions") or []):
            ok = "green" if item.get("dry_run_ok") else "red"
            grid.add_row("plan" if i == 0 else "", escape("$ " + str(item.get("kubectl"))))
            grid.add_row("", f"[{ok}]dry run: {escape(str(item.get('dry_run')))}[/]")
            for inv in item.get("inverse") or []:
                grid.add_row("", f"[dim]undo: {escape(str(inv))}[/]")
    else:
        grid.add_row("request", escape(json.dumps(payload, default=str)))
    out.print(Panel(grid, title="approval needed", border_style="yellow", expand=False))
    from rich.prompt import Prompt

    try:
        return Prompt.ask("approve this plan?", choices=["approve", "reject"], default="approve", console=out)
    except EOFError:
        out.print("[yellow]no answer on stdin: rejecting[/]")
        return "reject"


def print_log(incident: str, snap: Any) -> None:
    """Print an incident's transaction log from its latest graph state snapshot (``get_state``)."""
    v = snap.values
    rep = v.get("report") or {}
    head = _grid()
    head.add_row("incident", incident)
    head.add_row("namespace", str(v.get("namespace", "")))
    head.add_row("phase", str(v.get("phase", "")) + (f"  (waiting: {', '.join(snap.next)})" if snap.next else ""))
    head.add_row("alerts", escape(", ".join(sorted({a["labels"].get("alertname", "?")
                                                    for a in v.get("alerts") or []})) or "-"))
    head.add_row("at detection", health_row(v.get("health_detect")))
    head.add_row("eps", str(v.get("eps", "-")))
    if "approve" in (snap.next or ()):
        from stratus.cluster.actions import Action
        from stratus.tools.kubectl import render

        for i, a in enumerate(v.get("plan") or []):
            head.add_row("awaiting approval" if i == 0 else "", escape(render(Action(**a))))
    console.print(Panel(head, title="incident", expand=False))
    for tx in v.get("transactions") or []:
        status = tx["status"]
        colour = {"committed": "green", "undone": "red", "refused": "yellow"}.get(status, "yellow")
        grid = _grid()
        grid.add_row("hypothesis", escape(hypothesis_text(tx.get("hypothesis"))))
        for i, cmd in enumerate(tx.get("kubectl") or []):
            res = (tx.get("results") or [])
            note = ""
            if i < len(res):
                note = f"  [{'green' if res[i].get('ok') else 'red'}]{escape(str(res[i].get('message', '')))}[/]"
            grid.add_row("action" if i == 0 else "", escape(cmd) + note)
        grid.add_row("undo log", f"{len(tx.get('snapshot') or [])} manifest(s), "
                                 f"{len(tx.get('inverse') or [])} inverse command(s)")
        grid.add_row("health before", health_row(tx.get("health_before")))
        grid.add_row("health after", health_row(tx.get("health_after")))
        grid.add_row("verdict", escape(f"{tx.get('verdict')}: {tx.get('verdict_reason', '')} "
                                       f"(eps {tx.get('eps')})"))
        if status == "undone":
            ok = tx.get("restore_ok")
            grid.add_row("undo", f"[{'green' if ok else 'red'}]restore {'verified' if ok else 'NOT verified'}[/]"
                                 f"  restored {health_row(tx.get('health_restored'))}")
        console.print(Panel(grid, title=f"{tx['id']} (attempt {tx['attempt']}): [{colour}]{status}[/]",
                            border_style=colour, expand=False))
    if rep:
        grid = _grid()
        grid.add_row("outcome", rep.get("outcome", ""))
        grid.add_row("summary", escape(rep.get("summary", "")))
        if rep.get("root_cause"):
            grid.add_row("root cause", escape(hypothesis_text(rep["root_cause"])))
        grid.add_row("health", f"{rep.get('health_initial')} -> {rep.get('health_final')}")
        grid.add_row("transactions", f"{rep.get('transactions')} ({rep.get('rollbacks')} rolled back)")
        grid.add_row("TNR", "[bold red]VIOLATED[/]" if rep.get("tnr_violation") else "[green]held[/]")
        for r in rep.get("reasons") or []:
            grid.add_row("reflection", escape(r))
        console.print(Panel(grid, title="report", expand=False))

