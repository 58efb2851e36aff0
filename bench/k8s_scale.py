"""Scale benchmark of the twin as kubelet on the real control plane (run by hand, never as a test).

    nice -n 19 uv run python bench/k8s_scale.py [--nodes 50] [--namespaces 100] [--replicas 20]
                                                [--rounds 3] [--hold 60] [--diagnoses 5] [--profile FILE]

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
Diagnosis of one faulty namespace (``--diagnoses`` > 0): before the first round the whole
hotel-reservation app is deployed into ``scale-faulty`` (the agent runs its traffic there) and
``revoke_db_role`` is injected on ``mongodb-geo`` with ``agent.inject_fault`` (geo then crash-loops).
STRATUS's Detection and Diagnosis nodes, the real graph's, compiled to stop after ``diagnose``
(``interrupt_after``), run ``--diagnoses`` times through ``invoke_graph`` with a ``KubeCluster`` (admin
kubeconfig) whose telemetry is the twin's Prometheus API (``serve_prometheus``; queries hold the TSDB's lock),
in a child process so its time and peak RSS are STRATUS's alone: once on the idle cluster (only the
app's pods) and once in round 0 with the 2,000 pods Ready. ``--profile FILE`` writes a cProfile of each
run at scale (``FILE.0``, ``FILE.1``, ...); ``load_average_1m`` is the machine's before and after. The alerts are the twin's firing ones for the namespace, else one
``KubeDeploymentReplicasMismatch`` for geo.
Prints one JSON summary with the medians over rounds. The time is dominated by the real controllers'
client rate limits (the ReplicaSet controller creates pods at about 20 per second) on a shared machine.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "kube"), str(ROOT / "tests")]  # kube_controlplane needs testkit

from kube_controlplane import ControlPlane, missing_programs  # noqa: E402

from stratus.twin.apps import load_app  # noqa: E402
from stratus.twin.kubelet_agent import KubeletAgent  # noqa: E402
from stratus.twin.prom.http import serve_prometheus  # noqa: E402

APP = load_app("hotel-reservation")
IMAGE = next(iter(APP.images))  # the app image, holding the frontend binary
PORT = 5000
POLL_S = 1.0
FAULTY_NS = "scale-faulty"
FAULT, FAULT_TARGET, FAULT_VICTIM = "revoke_db_role", "mongodb-geo", "geo"


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


def _available(apps: Any, comps: list[str], timeout_s: float) -> None:
    def done() -> bool:
        return all((apps.read_namespaced_deployment(c, FAULTY_NS).status.available_replicas or 0) >= 1 for c in comps)
    _wait(done, timeout_s, f"{len(comps)} Deployments of {FAULTY_NS} Available")


def deploy_faulty(agent: KubeletAgent, core: Any, apps: Any, timeout_s: float) -> dict[str, Any]:
    """The app in ``FAULTY_NS`` (backends first, as an operator would), then the fault once it serves."""
    core.create_namespace({"metadata": {"name": FAULTY_NS}})
    backends = [c for c in APP.components if APP.kind_of(c) != "app"]
    for group in (backends, APP.app_services()):
        for comp in group:
            apps.create_namespaced_deployment(FAULTY_NS, APP.deployment(comp, FAULTY_NS))
            core.create_namespaced_service(FAULTY_NS, APP.service(comp, FAULTY_NS))
        _available(apps, group, timeout_s)
    rec = agent.inject_fault(FAULT, FAULT_TARGET, namespace=FAULTY_NS)

    def crashed() -> bool:
        pods = core.list_namespaced_pod(FAULTY_NS, label_selector=f"{APP.label_key}={FAULT_VICTIM}").items
        return any(cs.last_state and cs.last_state.terminated for p in pods for cs in p.status.container_statuses or [])
    _wait(crashed, timeout_s, f"{FAULT_VICTIM} failing after {FAULT}")
    return {"fault": FAULT, "target": FAULT_TARGET, "applied": rec["applied"],
            "pods": len(core.list_namespaced_pod(FAULTY_NS).items)}


def _peak_rss_mb() -> float:
    """This process's peak RSS since its exec (``VmHWM``; ``ru_maxrss`` would include the parent's at fork)."""
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def diagnose_child(kubeconfig: str, prometheus: str, repeats: int, profile: str | None) -> None:
    """(child process) Detect and diagnose ``FAULTY_NS`` ``repeats`` times; print timings and peak RSS."""
    from stratus.api import invoke_graph
    from stratus.cluster.kube import KubeCluster
    from stratus.context import Context
    from stratus.graph import wire

    rss_imported = _peak_rss_mb()
    cluster = KubeCluster(kubeconfig, namespace=FAULTY_NS, prometheus_url=prometheus)
    alerts = [a for a in cluster.telemetry.alerts() if a["labels"].get("namespace") == FAULTY_NS] or [{
        "status": "firing", "labels": {"alertname": "KubeDeploymentReplicasMismatch", "namespace": FAULTY_NS,
                                       "deployment": FAULT_VICTIM, "severity": "warning"},
        "annotations": {}, "startsAt": "2026-01-01T00:00:00Z"}]

    def until_diagnosis(checkpointer: Any) -> Any:
        return wire().compile(checkpointer=checkpointer, interrupt_after=["diagnose"])
    times, result = [], None
    for i in range(repeats):
        prof = cProfile.Profile() if profile else None
        t0 = time.perf_counter()
        if prof:
            prof.enable()
        result = invoke_graph(alerts, cluster=cluster, context=Context(db=":memory:"), thread_id=f"scale-{i}",
                              build=until_diagnosis)
        if prof:
            prof.disable()
            prof.dump_stats(f"{profile}.{i}")
        times.append(time.perf_counter() - t0)
    assert result is not None
    top = result.hypotheses[0] if result.hypotheses else {}
    print(json.dumps({"times_s": times, "detected": result.detected, "alerts": [a["labels"]["alertname"] for a in alerts],
                      "top_hypothesis": {k: top.get(k) for k in ("component", "fault_class", "summary")},
                      "hypotheses": len(result.hypotheses), "rss_after_import_mb": round(rss_imported),
                      "peak_rss_mb": round(_peak_rss_mb())}))


def diagnose(kubeconfig: Path, prometheus: str, repeats: int, profile: str | None = None) -> dict[str, Any]:
    """Run ``diagnose_child`` in a fresh interpreter and summarise its timings."""
    cmd = [sys.executable, __file__, "--diagnose-child", str(kubeconfig), prometheus, str(repeats)]
    load_before = os.getloadavg()[0]
    out = subprocess.run(cmd + ([profile] if profile else []), capture_output=True, text=True, timeout=600,
                         check=False)
    if out.returncode:
        raise SystemExit(f"diagnosis run failed:\n{out.stderr[-3000:]}")
    got = json.loads(out.stdout.strip().splitlines()[-1])
    times = sorted(got.pop("times_s"))
    return {"runs": len(times), "median_s": round(statistics.median(times), 2),
            "p95_s": round(times[math.ceil(0.95 * len(times)) - 1], 2), "all_s": [round(t, 2) for t in times],
            "load_average_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)], **got}


def one_round(r: int, args: argparse.Namespace, agent: KubeletAgent, core: Any, apps: Any,
              at_scale: Any = None) -> dict[str, Any]:
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
    if r == 0 and at_scale is not None:
        out["diagnosis_at_scale"] = at_scale()
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
    ap.add_argument("--diagnoses", type=int, default=5, help="STRATUS diagnosis runs, idle and at scale (0: none)")
    ap.add_argument("--profile", help="write a cProfile of each diagnosis at scale to FILE.0, FILE.1, ...")
    if sys.argv[1:2] == ["--diagnose-child"]:
        kubeconfig, prometheus, repeats, *profile = sys.argv[2:]
        return diagnose_child(kubeconfig, prometheus, int(repeats), profile[0] if profile else None)
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
                                 nodes=args.nodes, prefix="scale-node", namespace=FAULTY_NS)
            t0 = time.monotonic()
            agent.start()
            register_s = time.monotonic() - t0
            prom = serve_prometheus(agent.world, lock=agent.lock)
            admin = cp.kubeconfig("admin")
            faulty: dict[str, Any] = {}
            try:
                at_scale = None
                if args.diagnoses:
                    faulty = deploy_faulty(agent, core, apps, args.timeout)
                    faulty["diagnosis_idle"] = diagnose(admin, prom.url, args.diagnoses)
                    print(json.dumps(faulty), flush=True)
                    at_scale = partial(diagnose, admin, prom.url, args.diagnoses, args.profile)
                rounds = [one_round(r, args, agent, core, apps, at_scale) for r in range(args.rounds)]
            finally:
                prom.close()
                agent.stop()
        finally:
            cp.stop()
    keys = ("all_ready_s", "startup_latency_median_s", "startup_latency_p99_s", "teardown_s")
    print(json.dumps({"nodes": args.nodes, "pods": args.namespaces * args.replicas, "rounds": args.rounds,
                      "control_plane": {k: round(v, 1) for k, v in cp.timings.items()},
                      "register_nodes_s": round(register_s, 1),
                      "median": {k: statistics.median(r[k] for r in rounds) for k in keys},
                      "hold": {k: v for k, v in rounds[0].items() if k.startswith(("hold", "pass", "agent"))},
                      "faulty_namespace": faulty, "diagnosis_at_scale": rounds[0].get("diagnosis_at_scale")},
                     indent=2))


if __name__ == "__main__":
    main()
