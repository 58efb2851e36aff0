"""The demo's live timeline: one line per graph node, stamped with simulated seconds since the injection.

``Timeline`` is the ``on_update`` callback of ``invoke_graph`` (and so of ``run_scenario``): each
state update a node returns is turned into a short line, with the plan's kubectl commands, the
transaction's health before and after and the TNR verdict underneath.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stratus.cli.panels import health_text, hypothesis_text


class Timeline:
    """``on_update`` callback of ``invoke_graph``: prints one line per graph node as the incident runs."""

    def __init__(self, out: Console, clock: Any = None, origin: float = 0.0) -> None:
        self.out = out
        self.clock = clock
        self.origin = origin
        self.t0 = time.perf_counter()

    def _stamp(self) -> str:
        if self.clock is not None:
            return f"+{self.clock() - self.origin:5.0f}s"
        return f"{time.perf_counter() - self.t0:5.1f}w"

    def _row(self, stamp: str, node: str, body: str) -> None:
        # a grid per line keeps wrapped text inside its column on narrow terminals
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=7, no_wrap=True, style="dim")
        grid.add_column(width=14, no_wrap=True, style="bold cyan")
        grid.add_column(overflow="fold")
        grid.add_row(stamp, node, body)
        self.out.print(grid)

    def line(self, node: str, text: str, style: str = "") -> None:
        self._row(self._stamp(), node, f"[{style}]{text}[/]" if style else text)

    def sub(self, text: str, style: str = "dim") -> None:
        self._row("", "", f"[{style}]{escape(text)}[/]")

    def __call__(self, node: str, update: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{node}", None)
        if handler is None:
            self.line(node, escape(str(update.get("phase", ""))))
        else:
            handler(update)

    def _tx(self, update: dict[str, Any]) -> dict[str, Any]:
        txs = update.get("transactions") or [{}]
        return txs[-1]

    def _on_detect(self, u: dict[str, Any]) -> None:
        h = u.get("health_detect")
        alerts = [f["signal"] + ":" + str(f.get("component")) for f in u.get("findings") or []
                  if f.get("source") == "alerts"]
        if u.get("detected"):
            self.line("detect", f"incident open: {health_text(h)}, eps={u.get('eps', 0):.3f}", "yellow")
        else:
            self.line("detect", f"nothing to fix: {health_text(h)}", "green")
        if alerts:
            self.sub("alerts: " + ", ".join(alerts[:6]) + (f" (+{len(alerts) - 6} more)" if len(alerts) > 6 else ""))

    def _on_diagnose(self, u: dict[str, Any]) -> None:
        hyps = u.get("hypotheses") or []
        if not hyps:
            self.line("diagnose", "no hypothesis explains the symptoms", "yellow")
            return
        self.line("diagnose", escape("  ".join(f"{i}. {hypothesis_text(h)}" for i, h in enumerate(hyps[:3], 1))))

    def _on_plan_mitigation(self, u: dict[str, Any]) -> None:
        plan = u.get("plan") or []
        if not plan:
            self.line("plan", escape(f"no plan: {u.get('escalation_reason', '')}"), "yellow")
            return
        self.line("plan", escape(f"for {hypothesis_text(u.get('current_hypothesis'))}: {len(plan)} action(s)"))
        from stratus.cluster.actions import Action
        from stratus.tools.kubectl import render

        for a in plan:
            self.sub("$ " + render(Action(**a)), "white")

    def _on_approve(self, u: dict[str, Any]) -> None:
        if "plan" not in u:
            self.line("approve", "plan approved by a human", "green")
        elif u["plan"]:
            self.line("approve", f"plan edited by a human: {len(u['plan'])} action(s)", "yellow")
        else:
            self.line("approve", escape("; ".join(u.get("reflections") or ["plan rejected by a human"])), "red")

    def _on_begin(self, u: dict[str, Any]) -> None:
        tx = self._tx(u)
        if tx.get("status") == "refused":
            self.line("begin", escape(f"tx{tx.get('attempt')} refused: {tx.get('verdict_reason')}"), "red")
            return
        self.line("begin", escape(f"tx{tx.get('attempt')} BEGIN (write lock on {tx.get('namespace')}); "
                                  f"before: {health_text(tx.get('health_before'))}"))

    def _on_snapshot(self, u: dict[str, Any]) -> None:
        tx = self._tx(u)
        if not tx:
            return
        if tx.get("status") == "refused":
            self.line("snapshot", escape(f"tx{tx.get('attempt')} REFUSED before any change: "
                                         f"{tx.get('verdict_reason')}"), "red")
            return
        self.line("snapshot", f"tx{tx.get('attempt')} undo log: {len(tx.get('snapshot') or [])} manifest(s), "
                              f"{len(tx.get('inverse') or [])} inverse command(s); guard and dry run passed")

    def _on_execute(self, u: dict[str, Any]) -> None:
        tx = self._tx(u)
        results = tx.get("results") or []
        ok = sum(bool(r.get("ok")) for r in results)
        style = "" if ok == len(tx.get("actions") or []) else "red"
        self.line("execute", f"tx{tx.get('attempt')} applied {ok}/{len(tx.get('actions') or [])} action(s), "
                             "settled", style)
        for r in results:
            if not r.get("ok"):
                self.sub(f"failed: {r.get('message')}", "red")

    def _on_validate(self, u: dict[str, Any]) -> None:
        tx = self._tx(u)
        committed = tx.get("status") == "committed"
        verdict = str(tx.get("verdict") or "").upper()
        before = (tx.get("health_before") or {}).get("H")
        after = tx.get("health_after")
        head = f"tx{tx.get('attempt')} {'COMMIT' if committed else verdict + ' -> undo'}"
        if committed and verdict != "COMMIT":
            head += f" (TNR verdict {verdict} ignored: no TNR gate for this agent)"
        hb = "n/a" if before is None else f"{before:.3f}"
        self.line("validate", escape(f"{head}: H {hb} -> {health_text(after)}"), "green" if committed else "red")
        self.sub(str(tx.get("verdict_reason") or ""))

    def _on_undo(self, u: dict[str, Any]) -> None:
        tx = self._tx(u)
        restored = tx.get("health_restored")
        ok = tx.get("restore_ok")
        self.line("undo", escape(f"tx{tx.get('attempt')} UNDONE: restored {health_text(restored)}, "
                                 f"restore {'verified' if ok else 'NOT verified'}"), "red" if ok else "bold red")

    def _on_report(self, u: dict[str, Any]) -> None:
        rep = u.get("report") or {}
        style = {"resolved": "bold green", "no_incident": "green"}.get(rep.get("outcome", ""), "bold yellow")
        self.line("report", escape(str(rep.get("outcome", "")).upper()), style)

    _on_escalate = _on_report

