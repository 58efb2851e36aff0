"""What every agent node needs: its context, its cluster and its policy."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from stratus.cluster import default_cluster
from stratus.cluster.base import Cluster
from stratus.context import Context
from stratus.state import IncidentState


def context_of(runtime: Runtime[Context] | None) -> Context:
    ctx = getattr(runtime, "context", None)
    return ctx if isinstance(ctx, Context) else Context()


def cluster_of(ctx: Context) -> Cluster:
    return ctx.cluster if ctx.cluster is not None else default_cluster()


def policy_of(ctx: Context, state: IncidentState | None = None) -> Any:
    """The reasoning policy; the llm policy carries the incident's token/call usage across nodes."""
    if ctx.policy == "llm":
        from stratus.policies.llm import LLMPolicy

        return LLMPolicy(ctx, usage=dict(state or {}))
    from stratus.policies.rules import RulesPolicy

    return RulesPolicy()


def usage_of(policy: Any) -> dict[str, Any]:
    return policy.usage() if hasattr(policy, "usage") else {}


def step(state: IncidentState) -> int:
    return int(state.get("steps", 0)) + 1


def open_transaction(state: IncidentState) -> dict[str, Any] | None:
    """The last transaction if it has neither committed nor been undone (or refused)."""
    txs = state.get("transactions") or []
    if txs and txs[-1]["status"] in ("begun", "snapshotted", "applied", "crashed"):
        return txs[-1]
    return None
