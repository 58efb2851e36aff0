"""Pieces of the alert pipeline test (``test_alert_pipeline.py``): the shipped rules with shortened windows,
the app deployed through the API, the configs of the real Prometheus and Alertmanager, and ``stratus twin
serve`` / ``stratus serve`` as subprocesses on loopback ports, stopped by PID.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from app_deploy import deploy_in_waves
from kubernetes.dynamic import DynamicClient
from testkit import eventually, free_port, stop_process

from stratus.twin.apps import load_app
from stratus.twin.prom.rules import DATA_DIR

ROOT = Path(__file__).resolve().parents[2]
APP = load_app("hotel-reservation")
# The test copy of rules-benchmark.yaml: rate/changes windows of 2m and 5m become 20s and every `for:`
# becomes 30s (the shipped rules' shortest), evaluated every second. The expressions, labels and
# annotations are the shipped ones. A shorter `for:` lets STRATUS act within 30 s of the symptom's
# onset, and then H at BEGIN (measured over at least 30 s, ``health.RECENT_S``) still holds the healthy
# samples from before the fault, which makes the right fix look ineffective.
RULE_WINDOW, RULE_FOR = "20s", "30s"
START_TIMEOUT_S = 120.0


def fast_rules(tmp: Path) -> Path:
    """The shipped benchmark rules with the windows shortened (see ``RULE_WINDOW``, ``RULE_FOR``)."""
    doc = yaml.safe_load((DATA_DIR / "rules-benchmark.yaml").read_text())
    for group in doc["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[\d+m\]", f"[{RULE_WINDOW}]", rule["expr"])
            if "for" in rule:
                rule["for"] = RULE_FOR
    path = tmp / "rules-benchmark-fast.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def prometheus_config(twin_url: str, alertmanager_url: str, rules: Path) -> dict[str, Any]:
    """Scrape the twin's /metrics every second (``honor_labels``: the series carry their exporters' job
    and instance) and evaluate ``rules``, sending alerts to the Alertmanager."""
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [host(alertmanager_url)]}]}]},
            "scrape_configs": [{"job_name": "stratus-twin", "honor_labels": True,
                                "static_configs": [{"targets": [host(twin_url)]}]}]}


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """One route grouping by namespace to ``stratus serve``'s webhook, resolved notices included."""
    return {"route": {"receiver": "stratus", "group_by": ["namespace"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "stratus", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}]}


def host(url: str) -> str:
    return url.removeprefix("http://")


def deploy(admin: DynamicClient, ns: str, prom: str) -> None:
    """The app through the API in waves (``app_deploy``), each wave's Endpoints seen in the twin
    kubelet's telemetry, scraped by ``prom``."""
    ready = f'count by (endpoint) (kube_endpoint_address{{namespace="{ns}", ready="true"}})'
    deploy_in_waves(admin, ns, lambda wave: set(wave) <= {r["metric"]["endpoint"] for r in query(prom, ready)},
                    "the twin kubelet's telemetry")


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    r = httpx.get(url + "/api/v1/query", params={"query": promql}, timeout=10)
    r.raise_for_status()
    return list(r.json()["data"]["result"])


def prom_alerts(url: str, ns: str, state: str = "firing") -> list[dict[str, Any]]:
    """Prometheus's own alerts (``/api/v1/alerts``) of ``ns`` in ``state``."""
    r = httpx.get(url + "/api/v1/alerts", timeout=10)
    r.raise_for_status()
    return [a for a in r.json()["data"]["alerts"] if a["state"] == state and a["labels"].get("namespace") == ns]


def serving(prom: str, ns: str) -> bool:
    """Every app service serves, nothing fails over the rules' window and no alert is pending or firing."""
    calls = f'traces_span_metrics_calls_total{{namespace="{ns}", span_kind="SPAN_KIND_SERVER"'
    served = query(prom, f"sum by (service_name) (rate({calls}}}[{RULE_WINDOW}])) > 0")
    errors = query(prom, f'sum(rate({calls}, status_code="STATUS_CODE_ERROR"}}[{RULE_WINDOW}])) > 0')
    names = {r["metric"]["service_name"] for r in served}
    return ({"frontend", "search", "geo", "rate"} <= names and not errors
            and not prom_alerts(prom, ns, "firing") and not prom_alerts(prom, ns, "pending"))


class Program:
    """A ``stratus`` command as a subprocess with its log in ``workdir``, up once ``ready_url`` answers 200."""

    def __init__(self, name: str, args: list[str], workdir: Path, ready_url: str,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.args, self.ready_url = name, args, ready_url
        self.env = {**os.environ, **(env or {})}
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Program:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "stratus.cli", *self.args], cwd=ROOT, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)
        try:
            eventually(self._ready, START_TIMEOUT_S, f"{self.name} answering {self.ready_url}")
        except AssertionError:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
        return httpx.get(self.ready_url, timeout=2).status_code == 200

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, grace_s=30.0)


def twin_serve(admin_kubeconfig: Path, ns: str, prefix: str, workdir: Path) -> tuple[Program, str]:
    """``stratus twin serve`` as kubelet of 2 Nodes running the app's traffic in ``ns``, and its telemetry URL.

    One pass and one telemetry scrape a second; the twin's own rule evaluator runs rarely, since the real
    Prometheus evaluates the rules here."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["twin", "serve", "--kubeconfig", str(admin_kubeconfig), "--nodes", "2", "--prefix", prefix,
            "--namespace", ns, "--interval", "0.5", "--scrape-interval", "1", "--rule-interval", "60",
            "--lease-renew", "2", "--prometheus-port", str(port)]
    return Program("twin-serve", args, workdir, url + "/metrics").start(), url


def stratus_serve(port: int, kubeconfig: Path, ns: str, prom: str, alertmanager: str, workdir: Path,
                  env: dict[str, str]) -> Program:
    """``stratus serve`` on ``port`` and a real cluster (SQLite store), with telemetry from ``prom`` and
    ``alertmanager``."""
    args = ["serve", "--cluster", "kube", "--kubeconfig", str(kubeconfig), "--namespace", ns,
            "--prometheus", prom, "--alertmanager", alertmanager, "--port", str(port),
            "--db", str(workdir / "serve.db"), "--workers", "1", "--policy", "rules", "--approval", "never",
            "--log-level", "warning"]
    return Program("stratus-serve", args, workdir, f"http://127.0.0.1:{port}/healthz", env).start()
