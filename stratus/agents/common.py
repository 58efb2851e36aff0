"""What every agent node needs: its context, its cluster and its policy."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from stratus.cluster import default_cluster
from stratus.cluster.base import Cluster
from stratus.context import Context
from stratus.policies.base import Policy
from stratus.policies.rules import RulesPolicy
from stratus.state import IncidentState


def context_of(runtime: Runtime[Context] | None) -> Context:
    ctx = getattr(runtime, "context", None)
    return ctx if isinstance(ctx, Context) else Context()


def cluster_of(ctx: Context) -> Cluster:
    return ctx.cluster if ctx.cluster is not None else default_cluster()


def policy_of(ctx: Context, state: IncidentState | None = None) -> Policy:
    """The reasoning policy ``ctx.policy`` names, gives or builds for this node run.

    A policy that spends a budget (the llm policy) is built per node run from the incident's state, so
    its spending carries across nodes and survives a resume.
    """
    spec = ctx.policy
    if spec == "llm":
        from stratus.policies.llm import LLMPolicy  # imported lazily: the chat model stack is slow to import

        return LLMPolicy(ctx, usage=dict(state or {}))
    if spec == "rules":
        return RulesPolicy(journal=ctx.journal)
    if isinstance(spec, Policy):
        return spec
    return spec(ctx, state or {})


def catch_up(ctx: Context, cluster: Cluster) -> None:
    """Let the change journal, when STRATUS keeps one, record what changed since its last poll."""
    if ctx.journal is not None:
        ctx.journal.observe(cluster, ctx)


def open_transaction(state: IncidentState) -> dict[str, Any] | None:
    """The last transaction if it has neither committed nor been undone (or refused)."""
    txs = state.get("transactions") or []
    if txs and txs[-1]["status"] in ("begun", "snapshotted", "applied", "crashed"):
        return txs[-1]
    return None


def failed_attempts(state: IncidentState) -> int:
    """Transactions that did not commit (undone by TNR, refused by the guard or a human)."""
    return sum(t["status"] in ("undone", "refused") for t in state.get("transactions") or [])


def budget_spent(state: IncidentState, ctx: Context) -> str | None:
    """Why no further transaction may begin, or None.

    ``Context.max_attempts`` bounds the FAILED transactions: a compound incident needs one committed fix
    per fault, and a fix that TNR committed is progress, not a spent attempt. ``Context.max_transactions``
    is the hard cap on all of them, so a loop of partial fixes still ends.
    """
    failed = failed_attempts(state)
    if failed >= ctx.max_attempts:
        return f"attempt limit reached ({failed}/{ctx.max_attempts} transactions, Context.max_attempts)"
    total = int(state.get("attempts", 0))
    if total >= ctx.max_transactions:
        return f"transaction limit reached ({total}/{ctx.max_transactions}, Context.max_transactions)"
    return None
