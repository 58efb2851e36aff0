"""``stratus serve``: STRATUS as a long-running service next to Prometheus and Alertmanager.

Alertmanager posts alert groups to ``POST /api/v1/alerts``; each accepted group becomes (or updates) an
incident persisted in the intake store (``store``) before the 202; a bounded pool of graph workers
(``workers``) runs one checkpointed graph thread per incident with at most one writer per namespace;
the incident API, approvals, health and Prometheus metrics are in ``app``; outbound notifications in
``notify``; which world the workers act on (the twin, or a real cluster) in ``clusters``.
"""

from stratus.serve.app import ServeConfig, create_app
from stratus.serve.clusters import KubeProvider, TwinProvider
from stratus.serve.workers import WorkerSettings

__all__ = ["KubeProvider", "ServeConfig", "TwinProvider", "WorkerSettings", "create_app"]
