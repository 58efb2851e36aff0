"""``stratus run-scenario`` and ``stratus bench``: scenario files run through ``bench.runner.run_scenario``.

run-scenario prints one graded run-scenario object; bench runs every scenario with every agent, writes
one object a line to results.jsonl as it goes, then the summary, report and chart of ``bench.report``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from stratus.cli.common import AGENTS, POLICIES, check_choice, console, fail, unavailable
from stratus.cli.panels import ask_approval
from stratus.cli.tables import print_result, print_summary

if TYPE_CHECKING:
    from stratus.bench.scenarios import Scenario

HOLDOUT_DIR = "scenarios-holdout"


def _load(file: Path) -> Scenario:
    from stratus.bench.scenarios import ScenarioError, load_scenario

    try:
        return load_scenario(file)
    except ScenarioError as exc:
        raise fail(str(exc), 2) from None


def _run(sc: Scenario, agent: str, policy: str, db: str, approve: bool = False,
         prompt_on: Console | None = None) -> dict[str, Any]:
    from stratus.bench.runner import run_scenario
    from stratus.context import Context

    try:
        if approve:
            ctx = Context(policy=policy, db=db, approval="always")
            return run_scenario(sc, agent=agent, policy=policy, db=db, context=ctx,
                                approver=lambda payload: ask_approval(payload, prompt_on))
        return run_scenario(sc, agent=agent, policy=policy, db=db)
    except unavailable() as exc:
        raise fail(f"--policy {policy}: {exc}") from None


def run_scenario_cmd(
    file: Annotated[Path, typer.Argument(help="Scenario YAML file (format: README, Scenario files).")],
    agent: Annotated[str, typer.Option(help="Control loop: stratus, oneshot, retry or restart.")] = "stratus",
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
    check_choice(agent, AGENTS, "--agent")
    check_choice(policy, POLICIES, "--policy")
    sc = _load(file)
    result = _run(sc, agent, policy, db, approve, prompt_on=Console(stderr=True) if as_json else None)
    if as_json:
        print(json.dumps(result, default=str))
        return
    print_result(result, f"{sc.id} / {agent} / {policy}")


def bench(
    scenarios: Annotated[Path, typer.Option(help="Directory of scenario YAML files.")] = Path("scenarios"),
    agents: Annotated[str, typer.Option(help="Comma-separated agents to compare.")] = ",".join(AGENTS),
    out: Annotated[Path, typer.Option(help="Output directory (created).")] = Path("out/bench"),
    policy: Annotated[str, typer.Option(help="Reasoning policy every agent uses: rules or llm.")] = "rules",
    limit: Annotated[int | None, typer.Option(help="Only the first N scenarios (sorted by file name).")]
    = None,
    only: Annotated[str | None, typer.Option(
        help="Only scenario files whose name contains this text (before --limit).")] = None,
    holdout: Annotated[bool, typer.Option(
        "--holdout", help=f"Run the hold-out suite ({HOLDOUT_DIR}/: scenarios never used while developing) "
                          "instead of --scenarios.")] = False,
    base_url: Annotated[str | None, typer.Option(
        help="--policy llm: OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (default: $STRATUS_BASE_URL; "
             "the key is read from $OPENAI_API_KEY, or the variable Context.api_key_env names).")] = None,
    model: Annotated[str | None, typer.Option(
        help="--policy llm: model name the endpoint serves (default: $STRATUS_MODEL, else gpt-4o-mini).")] = None,
) -> None:
    """Run every scenario with every agent; write results.jsonl, summary.json, report.md, mitigation.png.

    Each run is one run-scenario object (a line of results.jsonl), graded at the same simulated horizon
    after detection for every agent. summary.json holds, per agent: detection, localisation, analysis
    and mitigation accuracy, TNR violations, harm left behind, false resolutions, rollbacks, median wall
    time and median simulated time to mitigate, plus a fault type x agent mitigation table and splits
    by fault family, by known versus new fault type and by app (mitigated, harm left, false
    resolutions, escalations, lucky fixes: mitigated without localising the cause). Agents: stratus,
    oneshot, retry and restart (restart every unhealthy Deployment, nothing else). With
    --policy llm each row also records the model's tool calls, requests (failed ones included), tokens
    from the server's usage and latency, and report.md gets a per-run table of them.
    """
    from stratus.bench.scenarios import ScenarioError, load_dir

    chosen = [a.strip() for a in agents.split(",") if a.strip()]
    for a in chosen:
        check_choice(a, AGENTS, "--agents")
    check_choice(policy, POLICIES, "--policy")
    if holdout:
        if scenarios != Path("scenarios"):
            raise fail("--holdout runs the hold-out suite; do not give --scenarios with it", 2)
        scenarios = Path(HOLDOUT_DIR)
    try:
        suite = load_dir(scenarios)
    except ScenarioError as exc:
        raise fail(str(exc), 2) from None
    if only:
        suite = [(p, sc) for p, sc in suite if only in p.name]
    if limit is not None:
        suite = suite[:max(0, limit)]
    from stratus.bench.report import write_report
    from stratus.bench.runner import run_scenario
    from stratus.context import Context

    llm_overrides = {k: v for k, v in (("base_url", base_url), ("model", model)) if v is not None}

    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    total = len(suite) * len(chosen)
    t0 = time.perf_counter()
    with (out / "results.jsonl").open("w") as fh:
        for _path, sc in suite:
            for agent in chosen:
                try:
                    ctx = Context(policy=policy, db=":memory:")  # fresh: a run may change it (oneshot)
                    ctx.base_url, ctx.model = base_url or ctx.base_url, model or ctx.model
                    row = run_scenario(sc, agent=agent, policy=policy, context=ctx)
                except unavailable() as exc:
                    raise fail(f"--policy {policy}: {exc}") from None
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
                              f"{row.get('wall_s', 0):.1f} s{_llm_note(row)})[/]")
    command = " ".join(["stratus bench", f"--scenarios {scenarios}", f"--agents {','.join(chosen)}",
                        f"--out {out}", f"--policy {policy}"] + ([f"--only {only}"] if only else [])
                       + ([f"--limit {limit}"] if limit is not None else [])
                       + [f"--{k.replace('_', '-')} {v}" for k, v in llm_overrides.items()])
    summary = write_report(rows, out, command=command)
    console.print()
    print_summary(summary)
    if summary.get("llm"):
        console.print("llm policy: " + ", ".join(f"{k} {v}" for k, v in summary["llm"].items()))
    files = ["results.jsonl", "summary.json", "report.md"] + (["mitigation.png"] if (out / "mitigation.png").exists()
                                                              else [])
    horizon = " / ".join(f"{h:g}" for h in summary.get("horizon_s") or []) or "n/a"
    console.print(f"\n{len(rows)} runs in {time.perf_counter() - t0:.0f} s, each graded {horizon} simulated s "
                  "after detection; wrote "
                  + ", ".join(str(out / f) for f in files))



def _llm_note(row: dict[str, Any]) -> str:
    if row.get("policy") != "llm" or row.get("error"):
        return ""
    return (f", llm {row.get('llm_calls', 0)} calls, {row.get('llm_tool_calls', 0)} tool calls, "
            f"{row.get('llm_prompt_tokens', 0)} prompt tokens, {row.get('llm_latency_s', 0)} s")
