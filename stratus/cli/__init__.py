"""The ``stratus`` command: demo, run-scenario, bench, faults, log, guard, rbac, run, serve, twin serve.

This module is the typer app and the list of its commands; each command lives in its own module and
hands off to library code (``bench.runner``, ``api``, ``tools.kubectl``, ``twin.faults``), and the rich
display code sits in ``timeline``, ``panels`` and ``tables``. Importing the package stays cheap (typer
and rich only): LangGraph, the twin and the benchmark are imported inside the commands that need them,
so ``stratus --help`` answers at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stratus.cli import bench, demo, faults, guard, log, rbac, run, serve, twin
from stratus.cli.common import console

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


# in this order in `stratus --help`
app.command()(demo.demo)
app.command()(run.run)
app.command("run-scenario")(bench.run_scenario_cmd)
app.command()(bench.bench)
app.command()(faults.faults)
app.command()(log.log)
app.command()(guard.guard)
app.command()(rbac.rbac)
app.command()(serve.serve)
app.add_typer(twin.app, name="twin")
