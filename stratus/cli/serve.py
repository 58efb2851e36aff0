"""``stratus serve``: the Alertmanager webhook intake and incident API as a long-running ASGI service.

A thin command: it turns options (and their ``STRATUS_SERVE_*`` environment variables, which the Helm
chart / kustomize base sets from a ConfigMap and a Secret) into ``stratus.serve.ServeConfig`` and a
cluster provider, and runs the app with uvicorn until SIGINT or SIGTERM.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stratus.cli.common import POLICIES, check_choice, default_db, err, fail
from stratus.cli.run import APPROVALS

CLUSTERS = ("twin", "kube")


def serve(
    host: Annotated[str, typer.Option(envvar="STRATUS_SERVE_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="STRATUS_SERVE_PORT", help="Port to listen on.")] = 8080,
    db: Annotated[str | None, typer.Option(
        help="Store for incidents and checkpoints: SQLite path or postgresql:// DSN (shared by several "
             "processes). Default: $STRATUS_DB or ~/.stratus/stratus.db.")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="STRATUS_SERVE_TOKEN", help="Bearer token every route but /healthz requires. Default: none "
                                           "(no auth; keep the port on loopback).")] = None,
    workers: Annotated[int, typer.Option(
        envvar="STRATUS_SERVE_WORKERS", min=0, max=64,
        help="Incidents run at once by this process; 0: intake only (other processes on the same "
             "PostgreSQL database run them).")] = 2,
    lease_s: Annotated[float, typer.Option(
        envvar="STRATUS_SERVE_LEASE_S", min=1.0,
        help="Lifetime of an incident's claim; another process resumes the incident this long after its "
             "process died.")] = 60.0,
    journal_s: Annotated[float, typer.Option(
        envvar="STRATUS_SERVE_JOURNAL_S", min=0.0,
        help="Seconds between polls of the change journal, which records what changes in the watched "
             "namespaces and the last-known-healthy manifests between incidents; 0: keep none.")] = 15.0,
    max_body: Annotated[int, typer.Option(envvar="STRATUS_SERVE_MAX_BODY", min=1024,
                                          help="Largest webhook body accepted, in bytes.")] = 1 << 20,
    cluster: Annotated[str, typer.Option(
        envvar="STRATUS_SERVE_CLUSTER", help="twin (the embedded HotelReservation twin, offline; its own rule "
                                             "evaluator raises alerts) or kube (a real cluster).")] = "twin",
    kubeconfig: Annotated[str | None, typer.Option(help="kube: kubeconfig file. Default: $KUBECONFIG, "
                                                        "~/.kube/config, or the pod's service account.")] = None,
    context: Annotated[str | None, typer.Option(help="kube: kubeconfig context.")] = None,
    prometheus: Annotated[str | None, typer.Option(
        envvar="STRATUS_PROMETHEUS_URL", help="kube: base URL of the Prometheus HTTP API (required).")] = None,
    alertmanager: Annotated[str | None, typer.Option(
        envvar="STRATUS_ALERTMANAGER_URL", help="kube: base URL of Alertmanager. Default: Prometheus's alerts.")]
    = None,
    namespace: Annotated[str, typer.Option(
        envvar="STRATUS_SERVE_NAMESPACE", help="kube: namespace of alert groups that name none.")] = "default",
    twin_fault: Annotated[str | None, typer.Option(
        help="twin: inject TYPE:TARGET after warm-up (see `stratus faults`), e.g. scale_to_zero:rate.")] = None,
    twin_seed: Annotated[int, typer.Option(help="twin: seed.")] = 0,
    twin_poll_s: Annotated[float, typer.Option(
        help="twin: wall seconds between evaluations of the twin's alert rules; 0 turns them off (alerts "
             "then come only from the webhook).")] = 5.0,
    twin_pace: Annotated[float, typer.Option(
        help="twin: wall seconds slept per simulated second the graph waits (0: as fast as possible).")] = 0.0,
    policy: Annotated[str | None, typer.Option(
        help="Reasoning policy: rules (offline) or llm. Default: $STRATUS_POLICY or rules.")] = None,
    approval: Annotated[str, typer.Option(
        envvar="STRATUS_APPROVAL", help="When a plan waits for approval over the API: auto (risky plans of the "
                                        "llm policy on a real cluster), never, risky or always.")] = "auto",
    notify_webhook: Annotated[str | None, typer.Option(
        envvar="STRATUS_NOTIFY_WEBHOOK", help="URL receiving JSON notices of detect, resolve and escalate.")]
    = None,
    notify_slack: Annotated[str | None, typer.Option(
        envvar="STRATUS_NOTIFY_SLACK", help="Slack-compatible incoming-webhook URL for the same notices.")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the Alertmanager webhook intake and the incident API until SIGINT/SIGTERM.

    `POST /api/v1/alerts` accepts Alertmanager webhook payloads (version 4), deduplicates them by group
    key and fingerprint, stores each incident before answering 202, and graph workers run one
    checkpointed incident per namespace at a time. `GET /api/v1/incidents[/ID]`, `POST
    /api/v1/incidents/ID/approval`, `GET /healthz` and `GET /metrics` complete the API. Several processes
    on one PostgreSQL database share the work; one killed mid-incident is resumed by another.
    """
    check_choice(cluster, CLUSTERS, "--cluster")
    check_choice(approval, APPROVALS, "--approval")
    if policy is not None:
        check_choice(policy, POLICIES, "--policy")
    if cluster == "kube" and not prometheus:
        raise typer.BadParameter("--cluster kube needs the Prometheus HTTP API URL", param_hint="--prometheus")
    import uvicorn

    from stratus.serve import KubeProvider, ServeConfig, TwinProvider, WorkerSettings, create_app
    from stratus.twin.faults import FaultError

    ctx: dict[str, object] = {"approval": approval}
    if policy is not None:
        ctx["policy"] = policy
    config = ServeConfig(db=db or default_db(), token=token or None, max_body_bytes=max_body,
                         notify_webhook=notify_webhook, notify_slack=notify_slack,
                         workers=WorkerSettings(workers=workers, lease_s=lease_s, context=ctx,
                                                journal_s=journal_s))
    provider: TwinProvider | KubeProvider
    if cluster == "kube":
        assert prometheus is not None
        provider = KubeProvider(prometheus, kubeconfig=kubeconfig, context=context, alertmanager_url=alertmanager,
                                default_namespace=namespace)
    else:
        try:
            provider = TwinProvider(seed=twin_seed, fault=twin_fault, poll_s=twin_poll_s, pace=twin_pace)
        except FaultError as exc:
            raise fail(f"--twin-fault {twin_fault}: {exc}", 2) from None
    if host not in ("127.0.0.1", "localhost", "::1") and not config.token:
        err.print(f"[yellow]warning:[/] listening on {host} without a token (--token / STRATUS_SERVE_TOKEN)")
    uvicorn.run(create_app(config, provider), host=host, port=port, log_level=log_level, access_log=False)
