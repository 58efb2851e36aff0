"""Scale benchmark of the twin as kubelet on the real control plane (run by hand, never as a test).

    nice -n 19 uv run python bench/k8s_scale.py [--nodes 50] [--namespaces 100] [--replicas 20]
                                                [--rounds 3] [--hold 60]

Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler the way the test fixture does
(``tests/kube/kube_controlplane.py``; build them first with ``bash .ci/controlplane.sh``), runs a
``KubeletAgent`` with ``--nodes`` nodes in this process, and per round creates ``--namespaces``
namespaces with one Deployment of ``--replicas`` pods each (the hotel-reservation image running its
``frontend`` binary, with a TCP readiness probe on its port, so every pod goes through the twin's
process and probe models). Measures per round:
  * ``all_ready_s``: from the first create until every Deployment reports all replicas ready;
  * pod start-up latency (Ready transition minus creation, per pod; median and p99);
  * with ``--hold`` seconds after the first round: the fewest ready replicas and Ready nodes seen while
    holding (so "kept Ready", not only "became Ready"), and the agent's pass durations;
  * ``teardown_s``: from deleting the namespaces until no pod is left.
Prints one JSON summary with the medians over rounds. The time is dominated by the real controllers'
client rate limits (the ReplicaSet controller creates pods at about 20 per second) on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "kube"))

from kube_controlplane import ControlPlane, missing_programs  # noqa: E402

from stratus.twin.apps import load_app  # noqa: E402
from stratus.twin.kubelet_agent import KubeletAgent  # noqa: E402

IMAGE = next(iter(load_app("hotel-reservation").images))  # the app image, holding the frontend binary
PORT = 5000
POLL_S = 1.0


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "frontend", "image": IMAGE, "command": ["frontend"],
                         "ports": [{"containerPort": PORT}],
                         "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 5},
                         "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}}}]}}}}


def _ready_total(apps: Any, prefix: str) -> int:
    return sum(d.status.ready_replicas or 0 for d in apps.list_deployment_for_all_namespaces().items
               if d.metadata.namespace.startswith(prefix))


def _startup_latencies(core: Any, prefix: str) -> list[float]:
    out = []
    for p in core.list_pod_for_all_namespaces().items:
        if not p.metadata.namespace.startswith(prefix):
            continue
        ready = next((c for c in p.status.conditions or [] if c.type == "Ready" and c.status == "True"), None)
        if ready is not None:
            out.append(ready.last_transition_time.timestamp() - p.metadata.creation_timestamp.timestamp())
    return sorted(out)


def _wait(check: Any, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if check():
            return time.monotonic() - t0
        time.sleep(POLL_S)
    raise SystemExit(f"{what} not reached within {timeout_s:.0f} s")


def one_round(r: int, args: argparse.Namespace, agent: KubeletAgent, core: Any, apps: Any) -> dict[str, Any]:
    prefix = f"scale{r}-"
    want = args.namespaces * args.replicas
    t0 = time.monotonic()
    for i in range(args.namespaces):
        ns = f"{prefix}{i:03d}"
        core.create_namespace({"metadata": {"name": ns}})
        apps.create_namespaced_deployment(ns, _deployment("web", args.replicas))
    created_s = time.monotonic() - t0
    _wait(lambda: _ready_total(apps, prefix) >= want, args.timeout, f"{want} pods Ready")
    all_ready_s = time.monotonic() - t0
    lat = _startup_latencies(core, prefix)
    out: dict[str, Any] = {"pods": want, "create_requests_s": round(created_s, 1), "all_ready_s": round(all_ready_s, 1),
                           "startup_latency_median_s": statistics.median(lat),
                           "startup_latency_p99_s": lat[math.ceil(0.99 * len(lat)) - 1]}
    if r == 0 and args.hold:
        agent.pass_s.clear()
        min_ready, min_nodes, t_hold = want, len(agent.nodes), time.monotonic()
        while time.monotonic() - t_hold < args.hold:
            min_ready = min(min_ready, _ready_total(apps, prefix))
            nodes = [n for n in core.list_node().items if n.metadata.name in set(agent.nodes)]
            min_nodes = min(min_nodes, sum(1 for n in nodes for c in n.status.conditions
                                           if c.type == "Ready" and c.status == "True"))
            time.sleep(5.0)
        passes = sorted(agent.pass_s)
        out.update(hold_s=args.hold, hold_min_ready_pods=min_ready, hold_min_ready_nodes=min_nodes, passes=len(passes),
                   pass_median_s=round(statistics.median(passes), 3),
                   pass_p95_s=round(passes[math.ceil(0.95 * len(passes)) - 1], 3), agent_errors=agent.errors)
    t1 = time.monotonic()
    for i in range(args.namespaces):
        core.delete_namespace(f"{prefix}{i:03d}")
    _wait(lambda: not any(p.metadata.namespace.startswith(prefix) for p in core.list_pod_for_all_namespaces().items),
          args.timeout, "all pods deleted")
    out["teardown_s"] = round(time.monotonic() - t1, 1)
    print(json.dumps({"round": r, **out}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--namespaces", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hold", type=float, default=60.0, help="seconds to watch the pods stay Ready (round 0)")
    ap.add_argument("--timeout", type=float, default=900.0, help="per phase")
    args = ap.parse_args()
    if missing := missing_programs():
        raise SystemExit(f"control plane not built ({', '.join(missing)}): run `bash .ci/controlplane.sh`")
    with tempfile.TemporaryDirectory(prefix="k8s-scale-") as tmp:
        cp = ControlPlane(Path(tmp))
        try:
            cp.start()
            api = k8s_config.new_client_from_config(config_file=str(cp.kubeconfig("admin")))
            core, apps = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
            agent = KubeletAgent(k8s_config.new_client_from_config(config_file=str(cp.kubeconfig("admin"))),
                                 nodes=args.nodes, prefix="scale-node")
            t0 = time.monotonic()
            agent.start()
            register_s = time.monotonic() - t0
            try:
                rounds = [one_round(r, args, agent, core, apps) for r in range(args.rounds)]
            finally:
                agent.stop()
        finally:
            cp.stop()
    keys = ("all_ready_s", "startup_latency_median_s", "startup_latency_p99_s", "teardown_s")
    print(json.dumps({"nodes": args.nodes, "pods": args.namespaces * args.replicas, "rounds": args.rounds,
                      "control_plane": {k: round(v, 1) for k, v in cp.timings.items()},
                      "register_nodes_s": round(register_s, 1),
                      "median": {k: statistics.median(r[k] for r in rounds) for k in keys},
                      "hold": {k: v for k, v in rounds[0].items() if k.startswith(("hold", "pass", "agent"))}},
                     indent=2))


if __name__ == "__main__":
    main()
