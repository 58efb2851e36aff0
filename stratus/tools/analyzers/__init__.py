"""Analyzers: evidence extraction from objects, events, logs, traces and alerts (k8sgpt's pkg/analyzer).

One module per evidence source, each one function ``View -> list[Finding]`` registered with
``@analyzer``; ``assess`` runs them. Both policies start from these findings (the LLM policy sees them
as compact evidence). Analyzers read the world only through the Cluster protocol and never know what
fault, if any, was injected.
"""

from stratus.tools.analyzers.assess import ANALYZERS, STATIC_ANALYZERS, assess, latent_issues, run_all
from stratus.tools.analyzers.registry import REGISTRY, AnalyzerFn, analyzer, finding
from stratus.tools.analyzers.view import View

__all__ = ["ANALYZERS", "REGISTRY", "STATIC_ANALYZERS", "AnalyzerFn", "View", "analyzer", "assess", "finding",
           "latent_issues", "run_all"]
