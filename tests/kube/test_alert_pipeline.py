"""Issue 9 item 3, end to end with the real programs: the real control plane, ``stratus twin serve`` as its
kubelet, Debian's ``prometheus`` scraping the twin's ``/metrics`` and evaluating the shipped rules (a test
copy with shortened windows, ``alert_pipeline.fast_rules``), Debian's ``prometheus-alertmanager`` posting
its webhook to ``stratus serve`` (a subprocess on SQLite), which fixes the cluster through KubeCluster as
the shipped least-privilege ServiceAccount with telemetry from that Prometheus and Alertmanager.

The fault is the network-policy-block one, made through the API: a NetworkPolicy denying all ingress to
search. The test follows it through every program: the alert fires in Prometheus, Alertmanager posts, serve
opens and runs the incident, the fix is committed through the API (TNR verdict in
``GET /api/v1/incidents/{id}``), Prometheus sees recovery (the alert goes inactive), Alertmanager sends the
resolved notification and serve records it. The wall time from the alert firing in Prometheus to the
committed fix is printed with the load average (``pytest -s``).

Without the control plane or the Prometheus programs the test skips, saying what to install; CI sets
``STRATUS_REQUIRE_K8S=1`` and ``STRATUS_REQUIRE_PROMETHEUS=1`` (``.ci/run``), which make it required.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from alert_pipeline import (
    APP,
    alertmanager_config,
    deploy,
    fast_rules,
    prom_alerts,
    prometheus_config,
    serving,
    stratus_serve,
    twin_serve,
)
from kube_controlplane import eventually
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from prometheus.prom_server import RealAlertmanager, RealPrometheus, require_programs
from testkit import free_port

TARGET = "search"
POLICY = f"deny-{TARGET}"
# The graph's windows sized to the 1-s scrapes (as in test_full_incident); 10 s of settling puts enough
# of the fixed traffic in H's 30-s window after the change for TNR to see the gain
SERVE_ENV = {"STRATUS_SETTLE_S": "10", "STRATUS_SETTLE_MAX_S": "30", "STRATUS_WINDOW_S": "15",
             "STRATUS_BASELINE_S": "15", "STRATUS_ALERT_POLL_S": "2", "STRATUS_RESOLVE_WAIT_S": "90",
             "STRATUS_MAX_SECONDS": "150", "STRATUS_CONFIRM_S": "6"}


def _deny_policy(ns: str) -> dict[str, Any]:
    """The ``network_policy_block`` fault's object: all ingress to the target's pods dropped."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": POLICY, "namespace": ns},
            "spec": {"podSelector": {"matchLabels": {APP.label_key: TARGET}}, "policyTypes": ["Ingress"],
                     "ingress": []}}


def _policies(admin: DynamicClient, ns: str) -> set[str]:
    return {p.metadata.name for p in k8s.NetworkingV1Api(admin.client).list_namespaced_network_policy(ns).items}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_alertmanager_to_committed_fix(admin_kubeconfig: Path, admin: DynamicClient, namespace: str,
                                       stratus_kubeconfig: Path, tmp_path: Path) -> None:
    require_programs("prometheus", "prometheus-alertmanager")
    ns, prefix = namespace, f"ap-{uuid.uuid4().hex[:6]}"
    for d in ("am", "prom", "serve", "twin"):
        (tmp_path / d).mkdir()
    serve_port = free_port()
    serve_url = f"http://127.0.0.1:{serve_port}"
    t_start = time.monotonic()
    with contextlib.ExitStack() as stack:
        twin, twin_url = twin_serve(admin_kubeconfig, ns, prefix, tmp_path / "twin")
        stack.callback(lambda: [k8s.CoreV1Api(admin.client).delete_node(f"{prefix}-{i}") for i in range(2)])
        stack.callback(twin.stop)
        am = stack.enter_context(RealAlertmanager(tmp_path / "am", alertmanager_config(serve_url + "/api/v1/alerts")))
        prom = stack.enter_context(RealPrometheus(tmp_path / "prom", prometheus_config(
            twin_url, am.url, fast_rules(tmp_path))))
        t0 = time.monotonic()
        print(f"\nalert pipeline: twin serve, Alertmanager and Prometheus up after {time.monotonic() - t_start:.1f} s")
        deploy(admin, ns, prom.url)
        eventually(lambda: serving(prom.url, ns), 120, "the app serving without errors and no alert in Prometheus")
        t_ready = time.monotonic()
        print(f"alert pipeline: app serving {t_ready - t0:.1f} s after the first Deployment")
        serve = stratus_serve(serve_port, stratus_kubeconfig, ns, prom.url, am.url, tmp_path / "serve", SERVE_ENV)
        stack.callback(serve.stop)

        def get(path: str) -> Any:
            r = httpx.get(serve_url + path, timeout=10)
            r.raise_for_status()
            return r.json()

        k8s.NetworkingV1Api(admin.client).create_namespaced_network_policy(ns, _deny_policy(ns))
        t_fault = time.time()
        fired = eventually(lambda: prom_alerts(prom.url, ns), 90, "an alert firing in the real Prometheus")
        t_fire = time.time()
        print(f"alert pipeline: firing in Prometheus {t_fire - t_fault:.1f} s after the fault")
        [incident] = eventually(lambda: get("/api/v1/incidents")["incidents"], 30,
                                "serve opening an incident from Alertmanager's webhook")
        assert incident["namespace"] == ns and incident["receiver"] == "stratus", incident
        url = f"/api/v1/incidents/{incident['id']}"

        def settled() -> dict[str, Any] | None:
            view = get(url)
            fixed = any(t["status"] == "committed" for t in view["transactions"])
            return view if fixed or view["state"] == "done" else None

        view = eventually(settled, 120, "a committed fix (or the incident's end) in GET " + url)
        [fix] = [t for t in view["transactions"] if t["status"] == "committed"] or [None]
        graph = view["graph"] or {}
        assert fix is not None, (f"no fix committed: {view['outcome']}, {graph.get('escalation_reason')}; "
                                 f"report {graph.get('report')}; transactions {view['transactions']}; "
                                 f"serve log: {serve.tail()}")
        t_commit = _epoch(fix["ended_at"])
        assert fix["verdict"] == "commit" and fix["H_after"] > fix["H_before"], fix
        assert fix["kubectl"] == [f"kubectl delete networkpolicy/{POLICY} -n {ns}"], fix
        assert POLICY not in _policies(admin, ns)

        eventually(lambda: not prom_alerts(prom.url, ns) and not prom_alerts(prom.url, ns, "pending"), 90,
                   "the alerts inactive in the real Prometheus after the fix")
        t_clear = time.time()

        def resolved() -> dict[str, Any] | None:
            view = get(url)
            notices = [e for e in view["timeline"] if e["source"] == "intake" and e.get("resolved")]
            done = view["state"] == "done" and all(a["status"] == "resolved" for a in view["alerts"])
            return view if done and notices else None

        view = eventually(resolved, 90, "serve recording Alertmanager's resolved notification")
        t_resolved = time.time()
        load = os.getloadavg()
        print(f"alert pipeline: app serving {t_ready - t0:.1f} s; fault -> firing in Prometheus "
              f"{t_fire - t_fault:.1f} s ({', '.join(sorted({a['labels']['alertname'] for a in fired}))}); "
              f"firing in Prometheus -> fix begun {_epoch(fix['started_at']) - t_fire:.1f} s, -> committed fix "
              f"{t_commit - t_fire:.1f} s; commit -> alerts inactive "
              f"{t_clear - t_commit:.1f} s; -> resolved notice recorded {t_resolved - t_clear:.1f} s; "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; test {time.monotonic() - t_start:.0f} s")
    assert view["outcome"] == "resolved" and view["error"] is None, view
    assert {a["labels"]["alertname"] for a in view["alerts"]} >= {a["labels"]["alertname"] for a in fired}
    created = [e for e in view["timeline"] if e["source"] == "intake" and e["kind"] == "created"]
    assert len(created) == 1 and created[0]["firing"] >= 1
