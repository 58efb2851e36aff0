"""``stratus twin serve``: run the twin as the kubelet of a real control plane (``twin.kubelet_agent``)."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

app = typer.Typer(help="The digital twin against a real Kubernetes control plane.", no_args_is_help=True)


@app.command()
def serve(
    kubeconfig: Annotated[str, typer.Option(help="Kubeconfig of the API server to serve as kubelet for.")],
    nodes: Annotated[int, typer.Option(help="Number of Nodes to register.")] = 1,
    prefix: Annotated[str, typer.Option(help="Node name prefix (names are PREFIX-0, PREFIX-1, ...).")] = "twin-node",
    context: Annotated[str | None, typer.Option(help="Kubeconfig context (default: the current one).")] = None,
    kubelet_port: Annotated[int, typer.Option(help="Loopback port of the kubelet endpoints (container logs) the "
                                                   "Nodes advertise at 127.0.0.1; 0 picks a free one.")] = 0,
) -> None:
    """Register NODES Nodes, keep their Leases renewed and run the pods bound to them until Ctrl-C.

    Pod status is written the way a kubelet does (Running, pod IP, Ready, container states); images
    the twin's registry does not know fail with ErrImagePull / ImagePullBackOff; graceful deletions are
    finished. The real controller manager and scheduler do the rest. The kubelet port (HTTPS, loopback)
    serves the containers' logs, so `kubectl logs` works through the API server.
    """
    from kubernetes import config as k8s_config

    from stratus.cli.common import console
    from stratus.twin.kubelet_agent import KubeletAgent

    agent = KubeletAgent(k8s_config.new_client_from_config(config_file=kubeconfig, context=context),
                         nodes=nodes, prefix=prefix, serve_port=True, kubelet_port=kubelet_port)
    # Ctrl-C or SIGTERM at any moment (even during registration) ends the loop after its current pass.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: agent.stop())
    agent.register()
    console.print(f"serving as kubelet for {', '.join(agent.nodes)} at 127.0.0.1:{agent.kubelet_port} (Ctrl-C stops)")
    agent.run()
