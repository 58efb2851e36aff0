"""The policy seam: what the agent nodes ask of a reasoning policy, and how a policy says it must stop.

A policy turns evidence into decisions: a second opinion on detection, ranked root-cause hypotheses,
and the next plan to run as a TNR transaction. The graph (transactions, undo, budgets) is the same
whichever policy answers. ``RulesPolicy`` (offline runbooks) and ``LLMPolicy`` (a chat model) are the
two shipped ones; ``Context.policy`` also takes any object of this shape, or a factory building one per
incident, so a test or a new policy is passed in rather than patched in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from stratus.cluster.base import Cluster
from stratus.state import Finding, Hypothesis, Plan, TriedPlans

if TYPE_CHECKING:
    from stratus.context import Context
    from stratus.state import IncidentState
    from stratus.tools.analyzers import View

class PolicyStop(RuntimeError):
    """The policy cannot go on for this incident (a budget is spent, its backend failed).

    The nodes catch it and the graph escalates to a human with this message.
    """


@runtime_checkable
class Policy(Protocol):
    """A reasoning policy as the Detection, Diagnosis and Mitigation nodes use it."""

    name: str
    plans_need_review: bool
    """True when plans are generated rather than taken from reviewed runbooks: approval ``auto`` then
    asks a human before a risky plan runs on a real cluster."""

    def confirm(self, cluster: Cluster, namespace: str, alerts: list[dict[str, Any]],
                health: dict[str, Any]) -> tuple[bool | None, str] | None:
        """A second opinion on whether the alerts describe an open incident, with a summary.

        It may add an incident telemetry missed, never veto one telemetry shows. ``None``: this policy
        has no opinion and the telemetry decides alone.
        """
        ...

    def diagnose(self, cluster: Cluster, namespace: str, reflections: list[str] | None = None) -> \
            tuple[list[Finding], list[Hypothesis], View]:
        """Findings and ranked hypotheses (best first), plus the view of the namespace they came from."""
        ...

    def next_plan(self, cluster: Cluster, namespace: str, hypotheses: list[Hypothesis], tried: TriedPlans,
                  view: View | None = None, reflections: list[str] | None = None) -> Plan | None:
        """The next plan to run, never one whose ``key`` is in ``tried``; ``None`` when none is left."""
        ...

    def usage(self) -> dict[str, Any]:
        """State updates recording what the policy spent (LLM calls, tokens); empty when it spends nothing."""
        ...


PolicyFactory = Callable[["Context", "IncidentState"], Policy]
"""Builds the policy for one node run from the context and the incident state (e.g. its spent budget)."""
