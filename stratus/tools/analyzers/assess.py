"""Running the analyzers: all of them over one ``View`` (``run_all``), the static subset that needs no
traffic (``latent_issues``), and health with those latent issues folded in (``assess``).
"""

from __future__ import annotations

from typing import Any

from stratus.cluster.base import Cluster
from stratus.state import Finding
from stratus.tools.analyzers import (  # noqa: F401 - each module registers its analyzer on import
    addresses,
    admission,
    alerts,
    autoscaling,
    changes,
    chaos,
    config_refs,
    deployments,
    disruption,
    endpoint_slices,
    events,
    ingress,
    jobs,
    logs,
    network_policies,
    nodes,
    pods,
    references,
    scheduling,
    services,
    storage,
    traces,
    workloads,
)
from stratus.tools.analyzers.registry import REGISTRY
from stratus.tools.analyzers.view import View

ANALYZERS = ("pods", "events", "deployments", "services", "policies", "chaos", "logs", "traces", "alerts",
             "references", "addresses", "config_refs", "scheduling", "workloads", "jobs", "ingress", "storage",
             "nodes", "autoscaling", "disruption", "endpoint_slices", "changes", "admission")
"""Run order. Findings come out in this order, and the hypotheses' evidence and the LLM's evidence list
follow it, so a new analyzer goes at the end unless it should outrank the others. The reference
analyzers' signals that point at a cause (selectors, ports, addresses, missing objects, scheduler
causes) and the ``changes`` analyzer's carry weights in runbooks.yaml for the generic plans; the rest
are evidence (for the LLM policy, the report and escalations)."""

STATIC_ANALYZERS = ("services", "deployments", "policies", "chaos")
"""Analyzers whose findings need no traffic: configuration read from manifests alone."""


def run_all(cluster: Cluster, namespace: str, only: list[str] | None = None,
            journal: Any = None) -> tuple[View, list[Finding]]:
    """Read the namespace once and run every registered analyzer (or those in ``only``) over it.

    ``journal`` (a ``ChangeJournal``) lets the ``changes`` analyzer say what changed before the symptoms."""
    view = View.read(cluster, namespace, journal=journal)
    findings: list[Finding] = []
    for name in ANALYZERS:
        if only and name not in only:
            continue
        findings.extend(REGISTRY[name](view))
    return view, findings


def latent_issues(cluster: Cluster, namespace: str) -> list[Finding]:
    """Critical configuration findings that need no traffic to show (k8sgpt-style static checks)."""
    _view, found = run_all(cluster, namespace, only=list(STATIC_ANALYZERS))
    return [f for f in found if f.severity == "critical" and f.signal not in ("NoEndpoints",)]


def assess(cluster: Cluster, ctx: Any, namespace: str) -> Any:
    """Health from telemetry, with latent critical misconfigurations added to the unhealthy set U."""
    from stratus.tools.health import measure

    report = measure(cluster, ctx, namespace)
    latent = sorted({f"latent:{f.signal}:{f.component}" for f in latent_issues(cluster, namespace)})
    if latent:
        report.unhealthy = sorted(set(report.unhealthy) | set(latent))
    return report
