"""Incident state carried through the graph, and the pydantic models it holds.

State values are JSON-plain (``model_dump()`` output) so checkpoints stay portable and readable by
``stratus log`` without importing anything beyond this module.
"""

from __future__ import annotations

import operator
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from langgraph.managed import RemainingSteps
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator
from typing_extensions import TypedDict  # pydantic (Studio's schemas) needs it on Python < 3.12

from stratus.cluster.actions import Action

Phase = Literal[
    "detect", "diagnose", "plan", "approve", "begin", "snapshot", "execute", "validate", "undo",
    "resolved", "escalated", "no_incident",
]


class Alert(BaseModel):
    """One alert as Alertmanager sends it in a webhook (payload version 4)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""
    endsAt: str = "0001-01-01T00:00:00Z"
    generatorURL: str = ""
    fingerprint: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_api_v2(cls, data: Any) -> Any:
        """Alertmanager API v2 (GET /api/v2/alerts) carries status as {state: ...}: accept it too."""
        if isinstance(data, dict) and isinstance(data.get("status"), dict):
            state = data["status"].get("state")
            data = {**data, "status": "firing" if state in ("active", "unprocessed", "suppressed") else "resolved"}
        return data

    @field_validator("labels")
    @classmethod
    def _needs_alertname(cls, v: dict[str, str]) -> dict[str, str]:
        if "alertname" not in v:
            raise ValueError("labels must contain 'alertname'")
        return v

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _rfc3339(cls, v: str) -> str:
        if v:
            try:
                datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"not an RFC3339 timestamp: {v!r}") from exc
        return v

    @property
    def name(self) -> str:
        return self.labels["alertname"]

    @property
    def namespace(self) -> str | None:
        return self.labels.get("namespace")


class Finding(BaseModel):
    """A fact an analyzer extracted from telemetry, with references to where it came from."""

    source: str  # analyzer name: pod, service, deployment, logs, traces, metrics, alerts, ...
    subject: str  # "<Kind>/<name>" or a component name
    summary: str
    severity: Literal["info", "warning", "critical"] = "warning"
    component: str | None = None  # the application component this finding points at
    signal: str = ""  # machine-readable key, e.g. "CrashLoopBackOff", "not_authorized"
    data: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)  # refs: "events:...", "logs:pod/geo-x", ...


class Facts(BaseModel):
    """The facts in a ``Finding.data`` that runbooks build plans from; an analyzer sets the ones it knows.

    Other facts (counts, ports, diffs) stay as extra fields, so ``Finding.data`` remains a plain dict.
    """

    model_config = ConfigDict(extra="allow")

    var: str | None = None  # env var holding a wrong address
    expected: str | list[str] | None = None  # the value peers and Services say it should have
    policy: str | None = None  # NetworkPolicy denying or restricting ingress
    kind: str | None = None  # chaos object kind
    name: str | None = None  # chaos object name
    db: str | None = None  # database named in a log line


class Hypothesis(BaseModel):
    """A ranked explanation of the incident: which component, which class of fault, why."""

    component: str
    fault_class: str
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = ""
    evidence: list[str] = Field(default_factory=list)
    system_level: str | None = None  # AIOpsLab label
    fault_type: str | None = None  # AIOpsLab label
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.fault_class}:{self.component}"

    @property
    def facts(self) -> list[Facts]:
        """The analyzers' facts behind this hypothesis (``data["facts"]``), typed."""
        return [Facts.model_validate(f) for f in self.data.get("facts", [])]


class Plan(BaseModel):
    """One candidate mitigation for a hypothesis: the actions TNR runs as one transaction.

    Its identity is ``key``, computed from the hypothesis (fault class and component), which candidate
    it is (the runbook's ``index``, or none for a plan the LLM wrote) and its ``commands`` in kubectl
    form. The state's ``tried`` list and the transaction log hold that key.
    """

    hypothesis: Hypothesis
    actions: list[Action]
    expect: str = ""  # the effect the plan should have, in words
    index: int | None = None  # the runbook's candidate number; None for a plan the LLM wrote
    commands: list[str] = Field(default_factory=list)  # the commands that identify it (kubectl form)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        variant = "llm" if self.index is None else str(self.index)
        return f"{self.hypothesis.key}:{variant}:{'|'.join(self.commands)}"

    def as_current_hypothesis(self) -> dict[str, Any]:
        """The ``current_hypothesis`` state value: the hypothesis with this plan's key and expected effect."""
        return {**self.hypothesis.model_dump(), "plan_key": self.key, "expect": self.expect}


TriedPlans = dict[str, list[str]]
"""Plans not to propose again: plan key -> the plan's commands (empty when the plan is not on record)."""


class HealthReport(BaseModel):
    """H = 0.5*A - 0.3*E - 0.2*L over a window, plus the set U of unhealthy components."""

    at: float
    window_s: float
    availability: float
    error_ratio: float
    latency_norm: float
    p99_ms: float | None = None
    requests_per_s: float = 0.0
    H: float
    unhealthy: list[str] = Field(default_factory=list)
    firing_alerts: list[str] = Field(default_factory=list)
    developing: list[str] = Field(default_factory=list)  # components with pending alerts or fresh errors
    ready: dict[str, int] = Field(default_factory=dict)  # Ready pods per component


class Transaction(BaseModel):
    """One mitigation attempt as TNR runs it. This is an entry of the transaction log."""

    id: str
    attempt: int
    namespace: str
    hypothesis: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = Field(default_factory=list)
    kubectl: list[str] = Field(default_factory=list)
    status: Literal["begun", "snapshotted", "applied", "committed", "undone", "refused", "crashed"] = "begun"
    snapshot: list[dict[str, Any]] = Field(default_factory=list)
    inverse: list[dict[str, Any]] = Field(default_factory=list)  # inverse actions for non-manifest state
    # non-manifest state captured before the change: {"read": exec action, "kubectl": str, "state": dict}
    db_snapshot: list[dict[str, Any]] = Field(default_factory=list)
    checks: list[dict[str, Any]] = Field(default_factory=list)  # per action: guard and server dry run verdicts
    # what the restore could not bring back: {"object", "captured", "observed"}; non-empty escalates at once
    restore_mismatch: list[dict[str, Any]] = Field(default_factory=list)
    results: list[dict[str, Any]] = Field(default_factory=list)
    health_before: dict[str, Any] | None = None
    health_after: dict[str, Any] | None = None
    health_restored: dict[str, Any] | None = None
    verdict: Literal["commit", "regression", "ineffective", "refused", "crashed"] | None = None
    verdict_reason: str = ""
    eps: float = 0.005
    restore_ok: bool | None = None
    started_at: float = 0.0
    ended_at: float | None = None


class IncidentReport(BaseModel):
    outcome: Literal["resolved", "escalated", "no_incident"]
    summary: str
    root_cause: dict[str, Any] | None = None
    transactions: int = 0
    rollbacks: int = 0
    health_initial: float | None = None
    health_final: float | None = None
    tnr_violation: bool = False
    reasons: list[str] = Field(default_factory=list)


def _last_wins(_old: Any, new: Any) -> Any:
    return new


def _merge_transactions(old: list[dict], new: list[dict]) -> list[dict]:
    """Append-only log keyed by transaction id: a later write of the same id updates that entry."""
    out = list(old or [])
    index = {t["id"]: i for i, t in enumerate(out)}
    for t in new or []:
        if t["id"] in index:
            out[index[t["id"]]] = t
        else:
            index[t["id"]] = len(out)
            out.append(t)
    return out


def new_incident_id() -> str:
    """A fresh opaque incident id: random, so it tells nothing about what happened or where."""
    return f"inc-{uuid.uuid4().hex[:10]}"


class IncidentInput(TypedDict, total=False):
    """What starts an incident: the alerts, and optionally its identity (Detection fills in what is missing)."""

    alerts: list[dict[str, Any]]  # Alertmanager alerts (``Alert.model_dump()``), the incident's trigger
    namespace: str  # namespace in scope; default: the alerts' namespace label, else Context.namespaces[0]
    incident_id: str  # also the checkpoint thread id; default: a new ``inc-<hex>`` id


class IncidentOutput(TypedDict, total=False):
    """What an incident run returns: the report, the transaction log and the evidence behind them."""

    incident_id: str
    namespace: str
    phase: Phase  # where the incident is: the last node's phase, or resolved / escalated / no_incident
    detected: bool  # Detection confirmed an open incident
    report: dict[str, Any] | None  # ``IncidentReport`` written by the report or escalate node
    transactions: Annotated[list[dict[str, Any]], _merge_transactions]  # ``Transaction`` log, keyed by id
    hypotheses: list[dict[str, Any]]  # latest ranked ``Hypothesis`` list, best first
    reflections: Annotated[list[str], operator.add]  # what each undone attempt taught (memory for retries)
    health_history: Annotated[list[dict[str, Any]], operator.add]  # H over time: {t, H, phase, tx, verdict}
    detection_summary: str  # the Detection policy's second opinion, if it gave one
    escalation_reason: str  # why the incident went to a human, when it did
    llm_calls: int  # LLM usage of the incident so far (the llm policy's budget)
    llm_tokens: int
    llm_prompt_tokens: int
    llm_stats: dict[str, Any]  # the llm policy's other figures: failed requests, tool calls, latency


class IncidentState(IncidentInput, IncidentOutput, total=False):
    """The whole state the nodes share; checkpointed after every node."""

    findings: Annotated[list[dict[str, Any]], operator.add]  # ``Finding`` list from every analyzer round
    current_hypothesis: dict[str, Any] | None  # the hypothesis being acted on, with plan_key and expect
    plan: list[dict[str, Any]]  # ``Action`` list of the plan waiting to run; empty: nothing to run
    attempts: int  # mitigation transactions begun
    tried: Annotated[list[str], operator.add]  # plan keys not to propose again (rejected by a human)
    proposed: Annotated[list[dict[str, Any]], operator.add]  # every plan proposed (``Plan`` dumps)
    health_baseline: dict[str, Any] | None  # ``HealthReport`` at detection
    health_detect: dict[str, Any] | None  # the same, kept for the incident-level TNR check
    health_latest: dict[str, Any] | None  # the last ``HealthReport`` measured
    eps: float  # TNR tolerance from the noise of H at detection
    messages: Annotated[list[dict[str, Any]], operator.add]  # not written: reflections replace transcripts
    llm_started: float  # wall-clock start of the llm policy's time budget
    remaining_steps: RemainingSteps  # managed by LangGraph: steps left before the recursion limit
    leftovers: list[dict[str, Any]]  # changes still taking something away once U is empty (agents/closing.py)
