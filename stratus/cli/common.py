"""What every ``stratus`` command shares: the consoles, the choices, and how a command fails.

Kept free of heavy imports, like the whole package: ``stratus --help`` must answer at once.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

AGENTS = ("stratus", "oneshot", "retry", "restart")
POLICIES = ("rules", "llm")

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def default_db() -> str:
    """The checkpoint store used when ``--db`` is not given ($STRATUS_DB or ~/.stratus/stratus.db)."""
    from stratus.context import default_db_path

    return default_db_path()


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error on stderr and return the exit to raise."""
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def check_choice(value: str, allowed: tuple[str, ...], flag: str) -> str:
    """Reject ``value`` as a bad ``flag`` unless it is one of ``allowed``."""
    if value not in allowed:
        raise typer.BadParameter(f"must be one of {', '.join(allowed)}, not {value!r}", param_hint=flag)
    return value


def unavailable() -> tuple[type[BaseException], ...]:
    """Errors that mean the chosen policy cannot run at all (no model configured), not a failed run."""
    from stratus.policies.llm import LLMUnavailable

    return (LLMUnavailable, NotImplementedError)

