"""The LLM agents' answer tools and the identity of a plan.

The three final-answer tools (``submit_detection``, ``submit_diagnosis``, ``submit_plan``) are pydantic
models: their JSON schemas are what the model is shown, and every answer, native or recovered from
text, is validated against them. A plan is identified by what it does (``effect``), so the same change
is never applied twice in one incident.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from stratus.tools.kubectl import GuardError, parse, render
from stratus.tools.kubectl.registry import VERBS


class Claim(BaseModel):
    claim: str
    evidence: list[str] = Field(default_factory=list, description="ids of tool calls or evidence (E1..)")


class Candidate(BaseModel):
    component: str
    fault_class: str
    confidence: float = Field(ge=0, le=1)


class submit_detection(BaseModel):  # noqa: N801 - the tool name the model sees
    """Final answer of the Detection agent."""

    incident: bool
    summary: str


class submit_diagnosis(BaseModel):  # noqa: N801
    """Final answer of the Diagnosis agent."""

    root_cause_component: str
    fault_class: str = Field(description="one class of the catalogue")
    confidence: float = Field(ge=0, le=1)
    summary: str
    evidence: list[Claim] = Field(default_factory=list)
    alternatives: list[Candidate] = Field(default_factory=list, max_length=3)


class PlannedCommand(BaseModel):
    kubectl: str
    expected_effect: str = ""

    @field_validator("kubectl")
    @classmethod
    def _program(cls, command: str) -> str:
        """The field holds a kubectl command: one that starts with a kubectl write verb gets the program
        name a small model leaves out (seen on a real run); anything else is left for the guard to judge."""
        words = command.split()
        if words and words[0] in {spec.command[0] for spec in VERBS.values()}:
            return "kubectl " + command.strip()
        return command


class submit_plan(BaseModel):  # noqa: N801
    """Final answer of the Mitigation agent: one to three kubectl commands, run as one transaction."""

    commands: list[PlannedCommand] = Field(min_length=1, max_length=3)
    rationale: str = ""


def normalized(command: str, namespace: str) -> str:
    """A command in the parser's canonical form with its namespace filled in (as typed if it does not parse)."""
    try:
        action = parse(command)
    except GuardError:
        return command.strip()
    action.namespace = action.namespace or namespace
    return render(action)


def effect(commands: list[str], namespace: str) -> tuple[str, ...]:
    """What a plan does, as the set of its normalized commands: the identity of a change."""
    return tuple(sorted({normalized(c, namespace) for c in commands}))
