"""The ``stratus`` command: demo, run-scenario, bench, faults, log, guard.

Importing this module stays cheap (typer and rich only): LangGraph, the twin and the benchmark are
imported inside the commands that need them, so ``stratus --help`` answers at once.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:
    from stratus.bench.scenarios import Scenario

DEMO_FAULT = "nonexistent_node_selector"
DEMO_TARGET = "consul"
DEMO_SEED = 7
DEMO_NOISE = "high"
AGENTS = ("stratus", "oneshot", "retry")
POLICIES = ("rules", "llm")

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(
    name="stratus",
    help="STRATUS: multi-agent SRE for Kubernetes with Transactional No-Regression (TNR).\n\n"
         "Detects, diagnoses and mitigates incidents; every change runs as a transaction that is committed "
         "only if health did not get worse, and is undone otherwise. Runs offline against an embedded "
         "digital twin of HotelReservation with a rule-based policy.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from stratus import __version__

        console.print(f"stratus {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """STRATUS command line."""


def _default_db() -> str:
    from stratus.context import default_db_path

    return default_db_path()


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


# ------------------------------------------------------------------------------------------------
# live timeline (demo)
# ------------------------------------------------------------------------------------------------
def _h(report: dict[str, Any] | None) -> str:
    if not report:
        return "n/a"
    return (f"H={report['H']:.3f} (A={report['availability']:.2f} E={report['error_ratio']:.2f} "
            f"L={report['latency_norm']:.2f}, {len(report.get('unhealthy') or [])} unhealthy)")


def _hyp(h: dict[str, Any] | None) -> str:
    if not h:
        return "?"
    return f"{h.get('fault_class')} @ {h.get('component')} ({float(h.get('confidence') or 0):.2f})"


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
            self.line("detect", f"incident open: {_h(h)}, eps={u.get('eps', 0):.3f}", "yellow")
        else:
            self.line("detect", f"nothing to fix: {_h(h)}", "green")
        if alerts:
            self.sub("alerts: " + ", ".join(alerts[:6]) + (f" (+{len(alerts) - 6} more)" if len(alerts) > 6 else ""))

    def _on_diagnose(self, u: dict[str, Any]) -> None:
        hyps = u.get("hypotheses") or []
        if not hyps:
            self.line("diagnose", "no hypothesis explains the symptoms", "yellow")
            return
        self.line("diagnose", escape("  ".join(f"{i}. {_hyp(h)}" for i, h in enumerate(hyps[:3], 1))))

    def _on_plan_mitigation(self, u: dict[str, Any]) -> None:
        plan = u.get("plan") or []
        if not plan:
            self.line("plan", escape(f"no plan: {u.get('escalation_reason', '')}"), "yellow")
            return
        self.line("plan", escape(f"for {_hyp(u.get('current_hypothesis'))}: {len(plan)} action(s)"))
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
                                  f"before: {_h(tx.get('health_before'))}"))

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
        self.line("validate", escape(f"{head}: H {hb} -> {_h(after)}"), "green" if committed else "red")
        self.sub(str(tx.get("verdict_reason") or ""))

    def _on_undo(self, u: dict[str, Any]) -> None:
        tx = self._tx(u)
        restored = tx.get("health_restored")
        ok = tx.get("restore_ok")
        self.line("undo", escape(f"tx{tx.get('attempt')} UNDONE: restored {_h(restored)}, "
                                 f"restore {'verified' if ok else 'NOT verified'}"), "red" if ok else "bold red")

    def _on_report(self, u: dict[str, Any]) -> None:
        rep = u.get("report") or {}
        style = {"resolved": "bold green", "no_incident": "green"}.get(rep.get("outcome", ""), "bold yellow")
        self.line("report", escape(str(rep.get("outcome", "")).upper()), style)

    _on_escalate = _on_report


def _report_panel(result: Any, *, wall_s: float, sim_s: float | None, db: str, oracle: tuple[bool, list[str]]
                  | None = None, fault: str | None = None) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    colour = {"resolved": "green", "no_incident": "green"}.get(result.outcome, "yellow")
    grid.add_row("outcome", f"[{colour}]{result.outcome}[/]")
    grid.add_row("summary", escape(result.summary))
    rc = result.root_cause
    if rc:
        labels = " / ".join(x for x in (rc.get("system_level"), rc.get("fault_type")) if x)
        grid.add_row("root cause", escape(f"{rc.get('fault_class')} at {rc.get('component')}"
                                          + (f"  [{labels}]" if labels else "")))
    fixes = [k for t in result.committed for k in t["kubectl"]]
    grid.add_row("fixes", escape("\n".join(fixes)) if fixes else "none committed")
    h0, h1 = result.health_initial, result.health_final
    if h0 is not None and h1 is not None:
        grid.add_row("health", f"H {h0:.3f} -> {h1:.3f}")
    grid.add_row("transactions", f"{len(result.transactions)} ({len(result.committed)} committed, "
                                 f"{result.rollbacks} rolled back)")
    tnr = "[bold red]VIOLATED[/]" if result.tnr_violation else "[green]held[/]"
    grid.add_row("TNR", tnr)
    if fault and oracle is not None:
        ok, notes = oracle
        grid.add_row("ground truth", escape(f"{fault}: oracle says {'mitigated' if ok else 'NOT mitigated'}"
                                            f" ({'; '.join(notes)})"))
    grid.add_row("time", (f"{sim_s:.0f} s simulated, " if sim_s is not None else "") + f"{wall_s:.1f} s wall")
    db_flag = "" if db == _default_db() else f" --db {db}"
    grid.add_row("incident", f"{result.incident_id}   [dim](stratus log {result.incident_id}{db_flag})[/]")
    return Panel(grid, title="incident report", border_style=colour, expand=False)


def _ask_approval(payload: Any, out: Console | None = None) -> str:
    """Show the approval request and read the answer (on ``out``: stderr when stdout carries JSON)."""
    out = out or console
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    if isinstance(payload, dict):
        hyp = payload.get("hypothesis") or {}
        grid.add_row("hypothesis", escape(_hyp(hyp)))
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


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------
@app.command()
def demo(
    fault: Annotated[str, typer.Option(help="Fault type to inject (see `stratus faults`).")] = DEMO_FAULT,
    target: Annotated[str, typer.Option(help="Component of HotelReservation to inject it into.")] = DEMO_TARGET,
    seed: Annotated[int, typer.Option(help="Seed of the twin (runs are deterministic per seed).")] = DEMO_SEED,
    noise: Annotated[str, typer.Option(
        help="Distractor symptoms: none, low or high (an evicted bystander pod, noisy logs, an extra "
             "NetworkPolicy, more load).")] = DEMO_NOISE,
    db: Annotated[str | None, typer.Option(
        help="Checkpoint store (SQLite path or postgresql:// DSN). Default: $STRATUS_DB or "
             "~/.stratus/stratus.db.")] = None,
    approve: Annotated[bool, typer.Option(
        "--approve", help="Ask for approval in the terminal before each plan runs (Context.approval=always).")]
    = False,
    policy: Annotated[str | None, typer.Option(
        help="Reasoning policy: rules (offline) or llm (needs a model endpoint). Default: $STRATUS_POLICY "
             "or rules.")] = None,
) -> None:
    """Run one incident end to end on the embedded twin, with a live timeline.

    Builds and warms up a HotelReservation twin, injects FAULT into TARGET, waits for alerts to fire, and
    hands them to the STRATUS graph (rules policy by default: offline). Each line of the timeline is one graph node:
    hypotheses, planned kubectl actions, health H before and after, TNR verdicts and undo results.
    With the default (consul re-created with a nodeSelector no node matches, high distractor noise) the
    first plan removes the nodeSelector and also restarts a crash-looping client before consul is back:
    the restarted client cannot register, the TNR gate sees a regression and undoes the transaction, and
    the next attempt (the nodeSelector fix alone) commits.
    """
    t0 = time.perf_counter()
    from stratus.bench.scenarios import ScenarioError, parse_scenario

    try:
        sc = parse_scenario({"id": f"demo-{target}-{fault}", "app": "hotel-reservation", "seed": seed,
                             "faults": [{"type": fault, "target": target}], "noise": noise}, "demo")
    except ScenarioError as exc:
        msg = str(exc).removeprefix("demo: invalid scenario: ").replace("(top level): ", "")
        for field, flag in (("type", "--fault"), ("target", "--target")):
            msg = msg.replace(f"faults.0.{field}", flag).replace(f"faults[0].{field}", flag)
        raise _fail(msg, 2) from None
    from stratus.context import Context

    if policy is not None:
        _check_choice(policy, POLICIES, "--policy")
    db = db or _default_db()
    ctx = Context(db=db)
    if policy is not None:
        ctx.policy = policy  # type: ignore[assignment]
    if approve:
        ctx.approval = "always"
    console.print(f"[bold]STRATUS demo[/]: HotelReservation twin (seed {seed}), fault [bold]{fault}[/] on "
                  f"[bold]{target}[/], policy {ctx.policy}, approval "
                  + ("auto (never on the twin)" if ctx.approval == "auto" else ctx.approval))
    with console.status("warming up the twin, injecting the fault, waiting for alerts ..."):
        from stratus.api import invoke_graph, open_checkpointer
        from stratus.bench.oracles import grade
        from stratus.bench.runner import prepare

        world, cluster, records, base, injected_at = prepare(sc)
        alerts = [a for a in world.firing() if a["labels"].get("alertname") != "Watchdog"]
    names = sorted({a["labels"]["alertname"] for a in alerts})
    thread_id = f"demo-{uuid.uuid4().hex[:10]}"
    timeline = Timeline(console, clock=lambda: world.clock.now, origin=injected_at)
    timeline.line("alerts", f"{len(alerts)} firing: {escape(', '.join(names)) or 'none'}")
    with open_checkpointer(db) as saver:
        try:
            result = invoke_graph(alerts, cluster=cluster, context=ctx, thread_id=thread_id,
                                  checkpointer=saver, on_update=timeline)
            while result.interrupted:
                answer = _ask_approval(result.interrupt)
                result = invoke_graph(alerts, cluster=cluster, context=ctx, thread_id=thread_id,
                                      checkpointer=saver, resume=answer, on_update=timeline)
        except _unavailable() as exc:
            raise _fail(f"--policy {ctx.policy}: {exc}") from None
    oracle = grade(world, cluster, records, base, ctx, changed=bool(result.committed))
    console.print()
    console.print(_report_panel(result, wall_s=time.perf_counter() - t0, sim_s=world.clock.now - injected_at,
                                db=db, oracle=oracle, fault=f"{fault}@{target}"))


def _load(file: Path) -> "Scenario":
    from stratus.bench.scenarios import ScenarioError, load_scenario

    try:
        return load_scenario(file)
    except ScenarioError as exc:
        raise _fail(str(exc), 2) from None


def _check_choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    if value not in allowed:
        raise typer.BadParameter(f"must be one of {', '.join(allowed)}, not {value!r}", param_hint=flag)
    return value


def _unavailable() -> tuple[type[BaseException], ...]:
    """Errors that mean the chosen policy cannot run at all (no model configured), not a failed run."""
    from stratus.policies.llm import LLMUnavailable

    return (LLMUnavailable, NotImplementedError)


def _run(sc: "Scenario", agent: str, policy: str, db: str, approve: bool = False,
         prompt_on: Console | None = None) -> dict[str, Any]:
    from stratus.bench.runner import run_scenario
    from stratus.context import Context

    try:
        if approve:
            ctx = Context(policy=policy, db=db, approval="always")  # type: ignore[arg-type]
            return run_scenario(sc, agent=agent, policy=policy, db=db, context=ctx,
                                approver=lambda payload: _ask_approval(payload, prompt_on))
        return run_scenario(sc, agent=agent, policy=policy, db=db)
    except _unavailable() as exc:
        raise _fail(f"--policy {policy}: {exc}") from None


@app.command("run-scenario")
def run_scenario_cmd(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file (format: README, Scenario files).")],
    agent: Annotated[str, typer.Option(help="Control loop: stratus, oneshot or retry.")] = "stratus",
    policy: Annotated[str, typer.Option(help="Reasoning policy: rules (offline) or llm.")] = "rules",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one line of JSON.")] = False,
    db: Annotated[str, typer.Option(
        help="Checkpoint store; give a file to keep the run for `stratus log`.")] = ":memory:",
    approve: Annotated[bool, typer.Option(
        "--approve", help="Ask for approval in the terminal before each plan runs (Context.approval=always).")]
    = False,
) -> None:
    """Run one scenario file with one agent and print the graded result.

    The result object (scenario, agent, policy, detected, localized, localization_correct,
    analysis_correct, mitigated, tnr_violations, health_initial, health_final, transactions, rollbacks,
    actions, sim_time_to_mitigate_s, wall_s, llm_calls, llm_tokens, ...) is a stable contract.
    Exit code 0 whatever the outcome; 2 when the scenario file is invalid.
    """
    _check_choice(agent, AGENTS, "--agent")
    _check_choice(policy, POLICIES, "--policy")
    sc = _load(file)
    result = _run(sc, agent, policy, db, approve, prompt_on=Console(stderr=True) if as_json else None)
    if as_json:
        print(json.dumps(result, default=str))
        return
    table = Table(title=f"{sc.id} / {agent} / {policy}", show_header=False, title_justify="left")
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


def _print_summary(summary: dict[str, Any]) -> None:
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


@app.command()
def bench(
    scenarios: Annotated[Path, typer.Option(help="Directory of scenario YAML files.")] = Path("scenarios"),
    agents: Annotated[str, typer.Option(help="Comma-separated agents to compare.")] = ",".join(AGENTS),
    out: Annotated[Path, typer.Option(help="Output directory (created).")] = Path("out/bench"),
    policy: Annotated[str, typer.Option(help="Reasoning policy every agent uses: rules or llm.")] = "rules",
    limit: Annotated[int | None, typer.Option(help="Only the first N scenarios (sorted by file name).")]
    = None,
) -> None:
    """Run every scenario with every agent; write results.jsonl, summary.json, report.md, mitigation.png.

    Each run is one run-scenario object (a line of results.jsonl). summary.json holds, per agent:
    detection, localisation, analysis and mitigation accuracy, TNR violations, rollbacks, median wall
    time and median simulated time to mitigate, plus a fault type x agent mitigation table.
    """
    from stratus.bench.scenarios import ScenarioError, load_dir

    chosen = [a.strip() for a in agents.split(",") if a.strip()]
    for a in chosen:
        _check_choice(a, AGENTS, "--agents")
    _check_choice(policy, POLICIES, "--policy")
    try:
        suite = load_dir(scenarios)
    except ScenarioError as exc:
        raise _fail(str(exc), 2) from None
    if limit is not None:
        suite = suite[:max(0, limit)]
    from stratus.bench.report import write_report
    from stratus.bench.runner import run_scenario

    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    total = len(suite) * len(chosen)
    t0 = time.perf_counter()
    with (out / "results.jsonl").open("w") as fh:
        for _path, sc in suite:
            for agent in chosen:
                try:
                    row = run_scenario(sc, agent=agent, policy=policy)
                except _unavailable() as exc:
                    raise _fail(f"--policy {policy}: {exc}") from None
                except Exception as exc:  # one broken run must not lose the others
                    row = {"scenario": sc.id, "agent": agent, "policy": policy, "error": repr(exc),
                           "faults": [f"{f.type}@{f.target}" for f in sc.faults], "mitigated": False}
                rows.append(row)
                fh.write(json.dumps(row, default=str) + "\n")
                fh.flush()
                mark = ("[red]error[/]" if row.get("error") else
                        "[green]mitigated[/]" if row.get("mitigated") else "[yellow]not mitigated[/]")
                console.print(f"[dim]{len(rows):>3}/{total}[/] {agent:<7} {escape(sc.id)}: {mark} [dim]"
                              f"(tx {row.get('transactions', '-')}, undone {row.get('rollbacks', '-')}, "
                              f"{row.get('wall_s', 0):.1f} s)[/]")
    command = " ".join(["stratus bench", f"--scenarios {scenarios}", f"--agents {','.join(chosen)}",
                        f"--out {out}", f"--policy {policy}"] + ([f"--limit {limit}"] if limit is not None else []))
    summary = write_report(rows, out, command=command)
    console.print()
    _print_summary(summary)
    files = ["results.jsonl", "summary.json", "report.md"] + (["mitigation.png"] if (out / "mitigation.png").exists()
                                                              else [])
    console.print(f"\n{len(rows)} runs in {time.perf_counter() - t0:.0f} s; wrote "
                  + ", ".join(str(out / f) for f in files))


@app.command()
def faults(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the README's markdown table.")] = False,
) -> None:
    """List the fault catalogue: name, valid targets, parameters and defaults, AIOpsLab labels."""
    from stratus.twin.faults import REGISTRY

    rows = [{"name": s.name, "targets": s.targets, "params": s.params, "defaults": s.defaults,
             "system_level": s.system_level, "fault_type": s.fault_type, "summary": s.summary}
            for s in REGISTRY.values()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if markdown:
        def cell(text: str) -> str:
            return text.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")

        print("| fault | targets | params (defaults) | AIOpsLab labels | what it does |")
        print("|---|---|---|---|---|")
        for r in rows:
            params = "<br>".join(f"`{k}`: {cell(v)}" for k, v in r["params"].items()) or "-"
            labels = " / ".join(x for x in (r["system_level"], r["fault_type"]) if x) or "-"
            print(f"| `{r['name']}` | {r['targets']} | {params} | {labels} | {cell(r['summary'])} |")
        return
    table = Table(title=f"Fault catalogue ({len(rows)} types)", title_justify="left", show_lines=True)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("targets", no_wrap=True)
    for col in ("params", "AIOpsLab labels", "summary"):
        table.add_column(col, overflow="fold")
    for r in rows:
        params = "\n".join(f"{k}: {v}" for k, v in r["params"].items()) or "-"
        labels = " / ".join(x for x in (r["system_level"], r["fault_type"]) if x) or "-"
        table.add_row(r["name"], r["targets"], escape(params), labels, escape(r["summary"]))
    console.print(table)
    console.print("[dim]targets: app = an application service, database = a MongoDB, any = any component, "
                  "none = no target[/]")


def _thread_ids(saver: Any) -> list[str]:
    conn = getattr(saver, "conn", None)
    if conn is not None and conn.__class__.__module__ == "sqlite3":
        rows = conn.execute("SELECT thread_id, MAX(checkpoint_id) FROM checkpoints WHERE checkpoint_ns = '' "
                            "GROUP BY thread_id ORDER BY MAX(checkpoint_id) DESC").fetchall()
        return [r[0] for r in rows]
    seen: dict[str, None] = {}
    for item in saver.list(None):
        seen.setdefault(item.config["configurable"]["thread_id"], None)
    return list(seen)


def _health_row(h: dict[str, Any] | None) -> str:
    if not h:
        return "-"
    return (f"H={h['H']:.4f}  A={h['availability']:.3f} E={h['error_ratio']:.3f} L={h['latency_norm']:.3f}  "
            f"unhealthy={len(h.get('unhealthy') or [])}")


def _print_log(incident: str, snap: Any) -> None:
    v = snap.values
    rep = v.get("report") or {}
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("incident", incident)
    head.add_row("namespace", str(v.get("namespace", "")))
    head.add_row("phase", str(v.get("phase", "")) + (f"  (waiting: {', '.join(snap.next)})" if snap.next else ""))
    head.add_row("alerts", escape(", ".join(sorted({a["labels"].get("alertname", "?")
                                                    for a in v.get("alerts") or []})) or "-"))
    head.add_row("at detection", _health_row(v.get("health_detect")))
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
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        grid.add_row("hypothesis", escape(_hyp(tx.get("hypothesis"))))
        for i, cmd in enumerate(tx.get("kubectl") or []):
            res = (tx.get("results") or [])
            note = ""
            if i < len(res):
                note = f"  [{'green' if res[i].get('ok') else 'red'}]{escape(str(res[i].get('message', '')))}[/]"
            grid.add_row("action" if i == 0 else "", escape(cmd) + note)
        grid.add_row("undo log", f"{len(tx.get('snapshot') or [])} manifest(s), "
                                 f"{len(tx.get('inverse') or [])} inverse command(s)")
        grid.add_row("health before", _health_row(tx.get("health_before")))
        grid.add_row("health after", _health_row(tx.get("health_after")))
        grid.add_row("verdict", escape(f"{tx.get('verdict')}: {tx.get('verdict_reason', '')} "
                                       f"(eps {tx.get('eps')})"))
        if status == "undone":
            ok = tx.get("restore_ok")
            grid.add_row("undo", f"[{'green' if ok else 'red'}]restore {'verified' if ok else 'NOT verified'}[/]"
                                 f"  restored {_health_row(tx.get('health_restored'))}")
        console.print(Panel(grid, title=f"{tx['id']} (attempt {tx['attempt']}): [{colour}]{status}[/]",
                            border_style=colour, expand=False))
    if rep:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        grid.add_row("outcome", rep.get("outcome", ""))
        grid.add_row("summary", escape(rep.get("summary", "")))
        if rep.get("root_cause"):
            grid.add_row("root cause", escape(_hyp(rep["root_cause"])))
        grid.add_row("health", f"{rep.get('health_initial')} -> {rep.get('health_final')}")
        grid.add_row("transactions", f"{rep.get('transactions')} ({rep.get('rollbacks')} rolled back)")
        grid.add_row("TNR", "[bold red]VIOLATED[/]" if rep.get("tnr_violation") else "[green]held[/]")
        for r in rep.get("reasons") or []:
            grid.add_row("reflection", escape(r))
        console.print(Panel(grid, title="report", expand=False))


@app.command()
def log(
    incident: Annotated[str | None, typer.Argument(help="Incident id (thread id), e.g. from `stratus demo`.")]
    = None,
    db: Annotated[str | None, typer.Option(
        help="Checkpoint store. Default: $STRATUS_DB or ~/.stratus/stratus.db.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the transaction log as JSON.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the incident ids in the store.")] = False,
) -> None:
    """Print an incident's transaction log from its checkpoints.

    Per transaction: the actions in kubectl form, health before and after (H, A, E, L, unhealthy count),
    the TNR verdict and its reason, and for undone ones whether the restore was verified. Then the final
    report. Exit code 1 when the incident is not in the store.
    """
    db = db or _default_db()
    if not list_ and not incident:
        raise _fail("give an INCIDENT id, or --list to see the ids in the store", 2)
    if db != ":memory:" and "://" not in db and not Path(db).expanduser().exists():
        raise _fail(f"no checkpoint store at {db} (set --db or STRATUS_DB)")
    from stratus.api import open_checkpointer
    from stratus.graph import build_graph

    with open_checkpointer(db) as saver:
        if list_:
            ids = _thread_ids(saver)
            graph = build_graph(checkpointer=saver)
            rows = []
            for tid in ids:
                snap = graph.get_state({"configurable": {"thread_id": tid}})
                v = snap.values
                rep = v.get("report") or {}
                txs = v.get("transactions") or []
                rows.append({"incident_id": tid, "created_at": snap.created_at, "namespace": v.get("namespace"),
                             "outcome": rep.get("outcome") or ("waiting: " + ",".join(snap.next) if snap.next
                                                               else v.get("phase")),
                             "transactions": len(txs), "rollbacks": sum(t["status"] == "undone" for t in txs)})
            if as_json:
                print(json.dumps(rows, default=str))
                return
            table = Table(title=f"incidents in {db}", title_justify="left")
            table.add_column("incident", no_wrap=True, style="bold")
            for col in ("last checkpoint", "namespace", "outcome", "tx", "undone"):
                table.add_column(col, overflow="fold")
            for r in rows:
                table.add_row(r["incident_id"], str(r["created_at"] or "")[:19].replace("T", " "),
                              str(r["namespace"] or ""),
                              str(r["outcome"] or ""), str(r["transactions"]), str(r["rollbacks"]))
            console.print(table)
            return
        assert incident is not None
        snap = build_graph(checkpointer=saver).get_state({"configurable": {"thread_id": incident}})
        if not snap.values:
            raise _fail(f"no incident {incident!r} in {db} (see `stratus log --list`)")
        if as_json:
            v = snap.values
            print(json.dumps({"incident_id": incident, "namespace": v.get("namespace"), "phase": v.get("phase"),
                              "next": list(snap.next), "alerts": v.get("alerts"),
                              "health_detect": v.get("health_detect"), "eps": v.get("eps"),
                              "transactions": v.get("transactions") or [], "report": v.get("report")},
                             default=str))
            return
        _print_log(incident, snap)


@app.command()
def guard(
    command: Annotated[str, typer.Argument(help="A kubectl write command, quoted, e.g. "
                                                "'kubectl scale deployment/geo -n ns --replicas=1'.")],
    scope: Annotated[list[str] | None, typer.Option(
        help="Namespace in scope (repeatable); without it any namespace passes.")] = None,
) -> None:
    """Check a kubectl command against STRATUS's guard and print the verdict as JSON.

    Prints whether it is allowed and why, the parsed action, its canonical kubectl form, and whether an
    inverse is known (computing the inverse itself needs the object's manifest, taken at snapshot time).
    Exit code 0 when allowed, 1 when refused.
    """
    from stratus.cluster.actions import Action
    from stratus.tools.kubectl import guard as run_guard
    from stratus.tools.kubectl import inverse_supported

    verdict = run_guard(command, allowed_namespaces=set(scope) if scope else None)
    out: dict[str, Any] = verdict.model_dump()
    if verdict.action is not None:
        ok, note = inverse_supported(Action(**verdict.action))
        out["inverse_supported"] = {"supported": ok, "note": note}
    else:
        out["inverse_supported"] = None
    print(json.dumps(out, indent=2, default=str))
    raise typer.Exit(0 if verdict.allowed else 1)


if __name__ == "__main__":  # pragma: no cover
    app(prog_name="stratus")
