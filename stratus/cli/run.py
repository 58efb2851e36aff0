"""``stratus run``: one incident on a real cluster (``KubeCluster``) from an Alertmanager alerts file.

A thin command: it builds the ``KubeCluster`` from the kubeconfig and telemetry URLs, hands the alerts to
``stratus.api.invoke_graph``, asks for approval in the terminal (on stderr) when the graph waits for a
human, and prints the incident's result as JSON on stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stratus.cli.common import POLICIES, check_choice, default_db, err, fail, unavailable

APPROVALS = ("auto", "never", "risky", "always")


def run(
    namespace: Annotated[str, typer.Option("--namespace", "-n", help="Namespace STRATUS acts on.")],
    alerts: Annotated[Path, typer.Option(help="Alerts as JSON: a list of Alertmanager alerts or a webhook "
                                              "payload; `-` reads stdin.", allow_dash=True)],
    prometheus: Annotated[str, typer.Option(help="Base URL of a Prometheus HTTP API (health, evidence).")],
    kubeconfig: Annotated[str | None, typer.Option(
        help="Kubeconfig file. Default: $KUBECONFIG or ~/.kube/config, or the pod's service account "
             "inside a pod.")] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context. Default: its current context.")] = None,
    alertmanager: Annotated[str | None, typer.Option(
        help="Base URL of an Alertmanager (firing alerts). Default: Prometheus's own alerts.")] = None,
    policy: Annotated[str | None, typer.Option(
        help="Reasoning policy: rules (offline) or llm. Default: $STRATUS_POLICY or rules.")] = None,
    approval: Annotated[str, typer.Option(
        help="When a human approves a plan: auto (risky plans of the llm policy on a real cluster), never, "
             "risky or always.")] = "auto",
    db: Annotated[str | None, typer.Option(
        help="Checkpoint store (SQLite path or postgresql:// DSN). Default: $STRATUS_DB or "
             "~/.stratus/stratus.db.")] = None,
    thread: Annotated[str | None, typer.Option(
        help="Incident id: reuse one to resume an interrupted incident (its open transaction is undone first).")]
    = None,
) -> None:
    """Run one incident on a real Kubernetes cluster and print its result as JSON.

    Every change is guarded, dry-run on the API server, snapshotted and judged by TNR, exactly as on the
    twin; the RBAC objects from `stratus rbac` are all the permissions it needs. Exit code 0 when the
    incident is resolved or nothing was open, 1 otherwise.
    """
    import sys

    check_choice(approval, APPROVALS, "--approval")
    if policy is not None:
        check_choice(policy, POLICIES, "--policy")
    try:
        text = sys.stdin.read() if str(alerts) == "-" else alerts.read_text()
    except OSError as exc:
        raise fail(f"--alerts {alerts}: {exc.strerror or exc}", 2) from None
    from stratus.api import AlertValidationError, invoke_graph
    from stratus.cli.panels import ask_approval
    from stratus.cluster.base import ClusterError
    from stratus.cluster.kube import KubeCluster
    from stratus.context import Context

    ctx = Context(db=db or default_db(), approval=approval, namespaces=(namespace,))  # type: ignore[arg-type]
    if policy is not None:
        ctx.policy = policy
    try:
        cluster = KubeCluster(kubeconfig, context=context, namespace=namespace, prometheus_url=prometheus,
                              alertmanager_url=alertmanager)
        result = invoke_graph(text, cluster=cluster, context=ctx, thread_id=thread)
        while result.interrupted:
            result = invoke_graph(text, cluster=cluster, context=ctx, thread_id=result.incident_id,
                                  resume=ask_approval(result.interrupt, out=err))
    except AlertValidationError as exc:
        raise fail(f"--alerts {alerts}: {exc}", 2) from None
    except ClusterError as exc:
        raise fail(str(exc)) from None
    except unavailable() as exc:
        raise fail(f"--policy {ctx.policy}: {exc}") from None
    print(result.model_dump_json(indent=2))
    raise typer.Exit(0 if result.outcome in ("resolved", "no_incident") else 1)
