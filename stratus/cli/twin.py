"""``stratus twin serve``: run the twin as the kubelet of a real control plane (``twin.kubelet_agent``)."""

from __future__ import annotations

import signal
import threading
import time
from typing import Annotated, Any

import typer

app = typer.Typer(help="The digital twin against a real Kubernetes control plane.", no_args_is_help=True)


def parse_fault(text: str) -> tuple[str, str | None, dict[str, Any]]:
    """``TYPE[:TARGET[:KEY=VALUE,...]]`` -> (type, target, params)."""
    kind, _, rest = text.partition(":")
    target, _, raw = rest.partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, raw.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise typer.BadParameter(f"--fault {text!r}: parameter {item!r} is not KEY=VALUE")
        params[key] = value
    return kind, target or None, params


@app.command()
def serve(
    kubeconfig: Annotated[str, typer.Option(help="Kubeconfig of the API server to serve as kubelet for.")],
    nodes: Annotated[int, typer.Option(help="Number of Nodes to register.")] = 1,
    prefix: Annotated[str, typer.Option(help="Node name prefix (names are PREFIX-0, PREFIX-1, ...).")] = "twin-node",
    context: Annotated[str | None, typer.Option(help="Kubeconfig context (default: the current one).")] = None,
    app_name: Annotated[str, typer.Option("--app", help="The twin app whose images, binaries and databases "
                                                        "the pods run.")] = "hotel-reservation",
    namespace: Annotated[str | None, typer.Option(help="Namespace where the app's load generator sends traffic "
                                                       "and faults act (default: the app's).")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between passes (kubelet, traffic, status writes).")] = 1.0,
    scrape_interval: Annotated[float, typer.Option(help="Seconds between telemetry scrapes into the TSDB.")] = 15.0,
    rule_interval: Annotated[float | None, typer.Option(help="Seconds between alert rule evaluations "
                                                             "(default: the scrape interval).")] = None,
    rules: Annotated[str, typer.Option(help="Alert rules: benchmark (short for:, an incident in minutes) or "
                                            "kube-prometheus (upstream for:, tens of minutes).")] = "benchmark",
    lease_renew: Annotated[float, typer.Option(help="Seconds between node Lease renewals.")] = 10.0,
    fault: Annotated[list[str] | None, typer.Option(help="Inject a twin fault through the API: "
                                                         "TYPE[:TARGET[:KEY=VALUE,...]] (repeatable; see "
                                                         "`stratus faults`).")] = None,
    fault_after: Annotated[float, typer.Option(help="Seconds after start-up before --fault is injected.")] = 60.0,
    kubelet_port: Annotated[int, typer.Option(help="Loopback port of the kubelet endpoints (container logs, exec "
                                                   "into the twin's databases) the Nodes advertise at 127.0.0.1; "
                                                   "0 picks a free one.")] = 0,
    prometheus_port: Annotated[int | None, typer.Option(help="Serve the twin's telemetry on this loopback port: "
                                                             "Prometheus HTTP API, Alertmanager /api/v2/alerts and "
                                                             "/metrics (0 picks a free one; default: not served).")]
    = None,
) -> None:
    """Register NODES Nodes, keep their Leases renewed and run the twin's models on the pods bound to them
    until Ctrl-C.

    The twin kubelet runs each container's process (start-up config, dependencies, database accounts),
    probes from the manifest, restarts with back-off (CrashLoopBackOff), image pulls from the twin's
    registry (ErrImagePull / ImagePullBackOff) and container logs; the network and traffic models run
    the app's workload in NAMESPACE; telemetry is scraped every --scrape-interval and alert rules are
    evaluated every --rule-interval. Pod status and kubelet Events (aggregated, with counts) are written
    the way a kubelet does; graceful deletions are finished. The real controller manager and scheduler do
    the rest. Object-change faults are made through the API by the twin's own injectors; database faults
    change the twin's databases. The kubelet port (HTTPS, loopback) serves container logs and exec into
    the database containers, so `kubectl logs` and `kubectl exec` work through the API server; with
    --prometheus-port the telemetry is served for `stratus run --prometheus URL`.
    """
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException

    from stratus.cli.common import console
    from stratus.cluster.base import ClusterError
    from stratus.tools.kubectl.verbs.db import parse_db_command
    from stratus.twin.kubelet_agent import KubeletAgent
    from stratus.twin.kubelet_exec import db_exec_handler
    from stratus.twin.prom.http import serve_prometheus

    faults = [parse_fault(f) for f in fault or []]
    agent = KubeletAgent(k8s_config.new_client_from_config(config_file=kubeconfig, context=context),
                         nodes=nodes, prefix=prefix, app=app_name, interval_s=interval, namespace=namespace,
                         scrape_s=scrape_interval, rule_s=rule_interval, rules=rules, lease_renew_s=lease_renew,
                         serve_port=True, kubelet_port=kubelet_port,
                         exec_handler=lambda *call: run_exec(*call))
    db_exec = db_exec_handler(agent.world, parse_db_command)

    def run_exec(namespace: str, pod: str, container: str, argv: list[str]) -> tuple[int, str, str]:
        with agent.lock:  # the databases are the mirror's state, stepped under this lock
            return db_exec(namespace, pod, container, argv)

    stopped = threading.Event()
    # Ctrl-C or SIGTERM at any moment (even during registration) ends the loop after its current pass.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    agent.start()
    prom = serve_prometheus(agent.world, port=prometheus_port, lock=agent.lock) if prometheus_port is not None else None
    console.print(f"serving as kubelet for {', '.join(agent.nodes)} at 127.0.0.1:{agent.server.port if agent.server else '-'}"
                  + (f"; telemetry at {prom.url}" if prom else "") + " (Ctrl-C stops)", markup=False)
    inject_at = time.monotonic() + fault_after
    try:
        while not stopped.wait(0.5):
            if faults and time.monotonic() >= inject_at:
                for kind, target, params in faults:
                    try:
                        rec = agent.inject_fault(kind, target, params)
                        console.print(f"fault {kind} on {target}: {'; '.join(rec['applied']) or 'runtime only'}",
                                      markup=False)
                    except (ValueError, ClusterError, ApiException) as exc:  # FaultError, NotFound, 409
                        console.print(f"fault {kind} not injected: {exc}", style="red", markup=False)
                faults = []
    finally:
        if prom is not None:
            prom.close()
        agent.stop()
