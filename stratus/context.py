"""Runtime configuration: every knob of an incident run, with descriptions Studio can show.

Each field falls back to an environment variable ``STRATUS_<FIELD>`` when not given explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from pydantic.json_schema import SkipJsonSchema


def _env(name: str, default: Any) -> Any:
    raw = os.environ.get(f"STRATUS_{name.upper()}")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(s.strip() for s in raw.split(",") if s.strip())
    return raw


def default_db_path() -> str:
    return os.environ.get("STRATUS_DB") or str(Path.home() / ".stratus" / "stratus.db")


@dataclass(kw_only=True)
class Context:
    """Configuration of one incident run."""

    # a Policy object or factory is for the Python API; Studio's form offers the two names
    policy: Literal["rules", "llm"] | SkipJsonSchema[Any] = field(
        default="rules", metadata={"description": "Reasoning policy: offline rules or an LLM (Python API: also "
                                                  "a stratus.policies.base.Policy, or a factory "
                                                  "(context, state) -> Policy)."})
    model: str = field(default="gpt-4o-mini", metadata={"description": "Chat model name for the llm policy."})
    base_url: str | None = field(default=None, metadata={"description": "OpenAI-compatible endpoint URL."})
    api_key_env: str = field(default="OPENAI_API_KEY",
                             metadata={"description": "Name of the env variable holding the API key."})
    temperature: float = field(default=0.0, metadata={"description": "Sampling temperature for the LLM."})
    approval: Literal["auto", "never", "risky", "always"] = field(
        default="auto", metadata={"description": "When a human must approve a plan before it runs "
                                                 "(auto: risky for the llm policy on a real cluster, else never)."})
    max_attempts: int = field(default=5, metadata={
        "description": "Failed mitigation transactions (undone or refused) before escalating; a committed fix "
                       "is progress and does not count (compound incidents need one per fault)."})
    max_transactions: int = field(default=12, metadata={
        "description": "Hard cap on mitigation transactions per incident, committed or not."})
    settle_s: float = field(default=60.0, metadata={"description": "Seconds to wait after applying a change."})
    settle_max_s: float = field(
        default=180.0, metadata={"description": "Upper bound on settling while rollouts are in progress."})
    window_s: float = field(default=60.0, metadata={"description": "Health measurement window in seconds."})
    baseline_s: float = field(default=120.0, metadata={"description": "Window used to estimate noise of H."})
    delta: float = field(default=0.01, metadata={"description": "Minimum H gain for a change to count."})
    eps_floor: float = field(default=0.005, metadata={"description": "Minimum TNR tolerance."})
    eps_cap: float = field(default=0.05, metadata={"description": "Maximum TNR tolerance."})
    recovery_dip_max: float = field(default=0.1, metadata={
        "description": "Largest fall of H below H_before - eps that TNR watches recover before judging a change "
                       "(a deeper dip is a regression at once)."})
    latency_slo_ms: float = field(default=500.0, metadata={"description": "p99 latency SLO at the entry point."})
    entry_services: tuple[str, ...] = field(
        default=("frontend", "nginx-thrift", "frontend-proxy"),
        metadata={"description": "Service names of the user-facing entry points."})
    client_services: tuple[str, ...] = field(
        default=("wrk2", "load-generator", "locust"),
        metadata={"description": "Service names of the load generators (their client spans measure A)."})
    max_steps: int = field(default=60, metadata={"description": "Graph steps before escalating."})
    max_tokens: int = field(default=200_000, metadata={"description": "LLM token budget per incident."})
    max_llm_calls: int = field(default=60, metadata={"description": "LLM call budget per incident."})
    llm_max_steps: int = field(default=8, metadata={"description": "Tool-calling steps per agent turn."})
    llm_max_steps_detect: int = field(default=3, metadata={"description": "Tool-calling steps for Detection."})
    llm_max_repairs: int = field(default=1, metadata={"description": "Malformed or refused answers repaired."})
    llm_min_tool_calls: int = field(default=0, metadata={
        "description": "Evidence results the model must have read before its answer is accepted in an agent "
                       "turn (1 for small models that answer at once; the forced final step is exempt)."})
    llm_max_evidence: int = field(default=25, metadata={"description": "Findings given to the LLM up front."})
    llm_tool_choice: str = field(default="auto", metadata={
        "description": "tool_choice of agent turns: auto, required, or omit (send none; some servers then leave "
                       "the tools out of the prompt)."})
    llm_final_choice: str = field(default="named", metadata={
        "description": "How the forced final step asks for the answer tool: named, required or auto; a server "
                       "rejecting one as invalid gets the next."})
    llm_timeout_s: float = field(default=60.0, metadata={"description": "Timeout of one LLM request."})
    llm_retries: int = field(default=4, metadata={"description": "Retries on rate limits, 5xx and timeouts."})
    llm_backoff_s: float = field(default=1.0, metadata={"description": "Base of the exponential back-off."})
    max_seconds: float = field(default=900.0, metadata={"description": "Wall-clock budget per incident."})
    namespaces: tuple[str, ...] = field(
        default=(), metadata={"description": "Namespaces in scope (empty: the alerts' namespace)."})
    db: str = field(default_factory=default_db_path,
                    metadata={"description": "Checkpoint store: SQLite path, or postgresql:// DSN."})
    resolve_wait_s: float = field(
        default=360.0, metadata={"description": "After a fix, how long to wait for firing alerts to clear."})
    confirm_s: float = field(default=90.0, metadata={
        "description": "Before reporting resolved: how long health must stay clean, with no container "
                       "restarting, after the last fix (a crash-looping pod is Ready between crashes)."})
    alert_poll_s: float = field(default=30.0, metadata={
        "description": "While waiting for alerts to clear or a change to recover, re-measure this often."})
    lock_ttl_s: float = field(default=900.0, metadata={"description": "Lifetime of the namespace write lock."})
    chat_model: Any = field(default=None, metadata={
        "description": "A LangChain chat model to use instead of building one (Python API and tests)."})
    cluster: Any = field(default=None, metadata={
        "description": "The Cluster to act on (Python API only; Studio uses the registered default)."})
    journal: Any = field(default=None, metadata={
        "description": "A ChangeJournal that has been watching the namespace (Python API, serve and run)."})

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in ("db", "cluster", "chat_model", "journal"):
                continue
            explicit = getattr(self, f.name)
            default = f.default if f.default is not f.default_factory else None
            if explicit == default:
                setattr(self, f.name, _env(f.name, explicit))
        if self.approval not in ("auto", "never", "risky", "always"):
            raise ValueError(f"Context.approval must be auto, never, risky or always, not {self.approval!r}")
        if self.max_attempts < 1:
            raise ValueError("Context.max_attempts must be >= 1")
        if self.max_transactions < 1:
            raise ValueError("Context.max_transactions must be >= 1")
        if self.policy not in ("rules", "llm") and (isinstance(self.policy, str) or not (
                callable(self.policy) or hasattr(self.policy, "next_plan"))):
            raise ValueError("Context.policy must be 'rules', 'llm', a Policy or a factory (context, state) -> "
                             f"Policy, not {self.policy!r}")
