"""``stratus guard``: the guard's verdict on one kubectl command, as JSON (``tools.kubectl.guard``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer


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
