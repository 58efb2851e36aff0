"""``stratus demo``: one incident on the embedded twin with a live timeline and a report panel.

The run itself is ``stratus.bench.runner.run_scenario``, the same call ``stratus run-scenario`` makes;
this module only builds the one-fault scenario, shows the timeline as the graph runs, and reads the
finished incident back from its checkpoints for the report panel.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import typer
from rich.markup import escape

from stratus.cli.common import POLICIES, check_choice, console, default_db, fail, unavailable
from stratus.cli.panels import ask_approval, report_panel
from stratus.cli.timeline import Timeline

DEMO_FAULT = "nonexistent_node_selector"
DEMO_TARGET = "consul"
DEMO_SEED = 7
DEMO_NOISE = "high"


def demo(
    fault: Annotated[str, typer.Option(help="Fault type to inject (see `stratus faults`).")] = DEMO_FAULT,
    target: Annotated[str | None, typer.Option(
        help="Component of the app to inject it into (default: consul for hotel-reservation, else the app's "
             "entry service).")] = None,
    app_name: Annotated[str, typer.Option(
        "--app", help="Twin app: hotel-reservation, social-network or astronomy-shop.")] = "hotel-reservation",
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
    from stratus.twin.apps import available_apps, load_app

    check_choice(app_name, tuple(available_apps()), "--app")
    if target is None:
        target = DEMO_TARGET if app_name == "hotel-reservation" else load_app(app_name).entry
    try:
        sc = parse_scenario({"id": f"demo-{target}-{fault}", "app": app_name, "seed": seed,
                             "faults": [{"type": fault, "target": target}], "noise": noise}, "demo")
    except ScenarioError as exc:
        msg = str(exc).removeprefix("demo: invalid scenario: ").replace("(top level): ", "")
        for field, flag in (("type", "--fault"), ("target", "--target")):
            msg = msg.replace(f"faults.0.{field}", flag).replace(f"faults[0].{field}", flag)
        raise fail(msg, 2) from None
    from stratus.context import Context

    if policy is not None:
        check_choice(policy, POLICIES, "--policy")
    db = db or default_db()
    ctx = Context(db=db)
    if policy is not None:
        ctx.policy = policy
    if approve:
        ctx.approval = "always"
    console.print(f"[bold]STRATUS demo[/]: {app_name} twin (seed {seed}), fault [bold]{fault}[/] on "
                  f"[bold]{target}[/], policy {ctx.policy}, approval "
                  + ("auto (never on the twin)" if ctx.approval == "auto" else ctx.approval))
    with console.status("warming up the twin, injecting the fault, waiting for alerts ..."):
        from stratus.api import open_checkpointer
        from stratus.bench.runner import prepare, run_scenario
        from stratus.graph import build_graph

        prepared = prepare(sc)
    world, injected_at = prepared[0], prepared[-1]
    alerts = [a for a in world.firing() if a["labels"].get("alertname") != "Watchdog"]
    names = sorted({a["labels"]["alertname"] for a in alerts})
    thread_id = f"demo-{uuid.uuid4().hex[:10]}"
    timeline = Timeline(console, clock=lambda: world.clock.now, origin=injected_at)
    timeline.line("alerts", f"{len(alerts)} firing: {escape(', '.join(names)) or 'none'}")
    detected_at = world.clock.now
    with open_checkpointer(db) as saver:
        try:
            row = run_scenario(sc, policy=ctx.policy, db=db, context=ctx, on_update=timeline,
                               approver=ask_approval, prepared=prepared, thread_id=thread_id,
                               checkpointer=saver)
        except unavailable() as exc:
            raise fail(f"--policy {ctx.policy}: {exc}") from None
        state = build_graph(checkpointer=saver).get_state({"configurable": {"thread_id": thread_id}}).values
    console.print()
    console.print(report_panel(row, state, fault=f"{fault}@{target}", wall_s=time.perf_counter() - t0,
                               sim_s=detected_at - injected_at + row["agent_done_s"], db=db))
