"""The analyzer registry: every evidence source is one function ``View -> list[Finding]`` registered here.

An analyzer module adds itself with ``@analyzer("name")``; ``assess.ANALYZERS`` fixes the order they
run in (and so the order of their findings). Adding an evidence source is one new module, one decorator
and one name in that tuple.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stratus.state import Finding
from stratus.tools.analyzers.view import View

AnalyzerFn = Callable[[View], list[Finding]]
REGISTRY: dict[str, AnalyzerFn] = {}


def analyzer(name: str) -> Callable[[AnalyzerFn], AnalyzerFn]:
    """Register ``fn`` as the analyzer called ``name`` (its findings carry ``source=name``)."""
    def register(fn: AnalyzerFn) -> AnalyzerFn:
        REGISTRY[name] = fn
        return fn
    return register


def finding(source: str, subject: str, summary: str, component: str | None, signal: str,
            severity: str = "warning", evidence: list[str] | None = None, **data: Any) -> Finding:
    """One ``Finding``; keyword arguments beyond the named ones become its ``data`` facts."""
    return Finding(source=source, subject=subject, summary=summary, component=component, signal=signal,
                   severity=severity, evidence=evidence or [], data=data)
