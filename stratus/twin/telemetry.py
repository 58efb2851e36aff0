"""What the twin's Prometheus scrapes: kube-state-metrics, cAdvisor and span metrics, by their real names.

Counters accumulate for the twin's whole life; each scrape writes one sample per series into the TSDB,
and series that vanish (a deleted pod) go stale as in Prometheus.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stratus.twin.controllers import pod_ready
from stratus.twin.runtime import parse_quantity
from stratus.twin.traffic import BUCKETS_MS, SIGMA

if TYPE_CHECKING:
    from stratus.twin.world import World

KSM = {"job": "kube-state-metrics", "instance": "10.244.0.9:8443"}
CADV = {"job": "kubelet", "metrics_path": "/metrics/cadvisor", "endpoint": "https-metrics", "service": "kubelet"}
SPAN = {"job": "otel-collector"}
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")

Sample = tuple[str, dict[str, str], float]


def _lognorm_cdf(x: float, median: float) -> float:
    if x <= 0:
        return 0.0
    if median <= 0:
        return 1.0
    return 0.5 * (1.0 + math.erf(math.log(x / median) / (SIGMA * math.sqrt(2.0))))


class Telemetry:
    def __init__(self, world: "World") -> None:
        self.w = world
        # span metrics: (service, span_name, kind, status) -> [calls, sum_ms, bucket counts...]
        self.spans: dict[tuple[str, str, str, str], list[float]] = {}
        self.cpu: dict[tuple[str, str], float] = {}  # (pod, container) -> cpu seconds

    # --- accumulation by the traffic model --------------------------------------------------
    def record_span(self, service: str, span_name: str, kind: str, ok: float, err: float,
                    lat_ok_ms: float, lat_err_ms: float) -> None:
        for status, n, lat in (("STATUS_CODE_UNSET", ok, lat_ok_ms), ("STATUS_CODE_ERROR", err, lat_err_ms)):
            key = (service, span_name, kind, status)
            acc = self.spans.get(key)
            if acc is None:
                if n <= 0 and status == "STATUS_CODE_ERROR":
                    continue
                acc = self.spans[key] = [0.0] * (2 + len(BUCKETS_MS))
            if n <= 0:
                continue
            acc[0] += n
            acc[1] += n * lat * math.exp(SIGMA * SIGMA / 2)
            for i, le in enumerate(BUCKETS_MS):
                acc[2 + i] += n * _lognorm_cdf(le, lat)

    def record_cpu(self, pods: list[dict[str, Any]], cpu_seconds: float) -> None:
        if not pods:
            return
        share = cpu_seconds / len(pods)
        for p in pods:
            key = (p["metadata"]["name"], p["spec"]["containers"][0]["name"])
            self.cpu[key] = self.cpu.get(key, 0.0) + share

    def forget_pod(self, pod: str) -> None:
        for key in [k for k in self.cpu if k[0] == pod]:
            del self.cpu[key]

    # --- scrape -----------------------------------------------------------------------------
    def scrape(self) -> list[Sample]:
        out: list[Sample] = []
        out.extend(self._ksm())
        out.extend(self._cadvisor())
        out.extend(self._spanmetrics())
        return out

    def _ksm(self) -> Iterable[Sample]:
        store = self.w.store
        for pod in store.list("Pod"):
            m = pod["metadata"]
            base = {**KSM, "namespace": m["namespace"], "pod": m["name"], "uid": m["uid"]}
            st = pod.get("status", {})
            owner = (m.get("ownerReferences") or [{}])[0]
            yield "kube_pod_info", {**base, "node": pod["spec"].get("nodeName", ""), "pod_ip": st.get("podIP", ""),
                                    "host_ip": st.get("hostIP", ""), "created_by_kind": owner.get("kind", ""),
                                    "created_by_name": owner.get("name", "")}, 1.0
            yield "kube_pod_owner", {**base, "owner_kind": owner.get("kind", "<none>"),
                                     "owner_name": owner.get("name", "<none>"), "owner_is_controller": "true"}, 1.0
            phase = st.get("phase", "Pending")
            for ph in PHASES:
                yield "kube_pod_status_phase", {**base, "phase": ph}, 1.0 if ph == phase else 0.0
            ready = pod_ready(pod)
            for cond in ("true", "false", "unknown"):
                yield "kube_pod_status_ready", {**base, "condition": cond}, \
                    1.0 if (cond == "true") == ready and cond != "unknown" else 0.0
            scheduled = bool(pod["spec"].get("nodeName"))
            for cond in ("true", "false", "unknown"):
                yield "kube_pod_status_scheduled", {**base, "condition": cond}, \
                    1.0 if (cond == "true") == scheduled and cond != "unknown" else 0.0
            if not scheduled:
                yield "kube_pod_status_unschedulable", base, 1.0
            specs = {c["name"]: c for c in pod["spec"]["containers"]}
            for cs in st.get("containerStatuses", []):
                cl = {**base, "container": cs["name"]}
                yield "kube_pod_container_info", {**cl, "image": cs.get("image", ""),
                                                  "image_spec": cs.get("image", "")}, 1.0
                state = cs.get("state", {})
                yield "kube_pod_container_status_ready", cl, 1.0 if cs.get("ready") else 0.0
                yield "kube_pod_container_status_running", cl, 1.0 if "running" in state else 0.0
                yield "kube_pod_container_status_waiting", cl, 1.0 if "waiting" in state else 0.0
                yield "kube_pod_container_status_restarts_total", cl, float(cs.get("restartCount", 0))
                if "waiting" in state:
                    yield "kube_pod_container_status_waiting_reason", \
                        {**cl, "reason": state["waiting"].get("reason", "")}, 1.0
                last = (cs.get("lastState") or {}).get("terminated")
                if last:
                    yield "kube_pod_container_status_last_terminated_reason", {**cl, "reason": last["reason"]}, 1.0
                    yield "kube_pod_container_status_last_terminated_exitcode", cl, float(last["exitCode"])
                res = (specs.get(cs["name"], {}).get("resources") or {})
                for kind_, metric in (("limits", "kube_pod_container_resource_limits"),
                                      ("requests", "kube_pod_container_resource_requests")):
                    for r, q in (res.get(kind_) or {}).items():
                        unit = "core" if r == "cpu" else "byte"
                        yield metric, {**cl, "node": pod["spec"].get("nodeName", ""), "resource": r,
                                       "unit": unit}, parse_quantity(q) or 0.0
        for d in store.list("Deployment"):
            m, s = d["metadata"], d.get("status", {})
            base = {**KSM, "namespace": m["namespace"], "deployment": m["name"]}
            yield "kube_deployment_spec_replicas", base, float(d["spec"].get("replicas", 1))
            yield "kube_deployment_status_replicas", base, float(s.get("replicas", 0))
            yield "kube_deployment_status_replicas_available", base, float(s.get("availableReplicas", 0))
            yield "kube_deployment_status_replicas_ready", base, float(s.get("readyReplicas", 0))
            yield "kube_deployment_status_replicas_updated", base, float(s.get("updatedReplicas", 0))
            yield "kube_deployment_status_replicas_unavailable", base, float(s.get("unavailableReplicas", 0))
            yield "kube_deployment_metadata_generation", base, float(m.get("generation", 1))
            yield "kube_deployment_status_observed_generation", base, float(s.get("observedGeneration", 0))
            for c in s.get("conditions", []):
                for val in ("true", "false", "unknown"):
                    yield "kube_deployment_status_condition", {**base, "condition": c["type"], "status": val,
                                                               "reason": c.get("reason", "")}, \
                        1.0 if c["status"].lower() == val else 0.0
        for ep in store.list("Endpoints"):
            m = ep["metadata"]
            base = {**KSM, "namespace": m["namespace"], "endpoint": m["name"]}
            yield "kube_endpoint_info", base, 1.0
            for subset in ep.get("subsets") or []:
                for ready_s, key in (("true", "addresses"), ("false", "notReadyAddresses")):
                    for a in subset.get(key) or []:
                        for p in subset.get("ports", []):
                            yield "kube_endpoint_address", {**base, "ip": a["ip"], "port_name": p.get("name", ""),
                                                            "port_protocol": "TCP", "port_number": str(p["port"]),
                                                            "ready": ready_s}, 1.0
        for n in store.list("Node"):
            base = {**KSM, "node": n["metadata"]["name"]}
            yield "kube_node_spec_unschedulable", base, 1.0 if n["spec"].get("unschedulable") else 0.0
            for val in ("true", "false", "unknown"):
                yield "kube_node_status_condition", {**base, "condition": "Ready", "status": val}, \
                    1.0 if val == "true" else 0.0

    def _cadvisor(self) -> Iterable[Sample]:
        kubelet = self.w.kubelet
        for pod in self.w.store.list("Pod"):
            if not pod["spec"].get("nodeName"):
                continue
            m = pod["metadata"]
            for c in pod["spec"]["containers"]:
                cr = kubelet.rt.get((m["uid"], c["name"]))
                if cr is None or cr.state != "running" or cr.proc is None:
                    continue
                lbl = {**CADV, "namespace": m["namespace"], "pod": m["name"], "container": c["name"],
                       "image": c.get("image", ""), "node": pod["spec"]["nodeName"]}
                yield "container_memory_working_set_bytes", lbl, cr.proc.memory_bytes
                limit = parse_quantity((c.get("resources") or {}).get("limits", {}).get("memory")) or 0.0
                yield "container_spec_memory_limit_bytes", lbl, limit
                yield "container_cpu_usage_seconds_total", lbl, \
                    self.cpu.get((m["name"], c["name"]), 0.0) + 0.002 * (self.w.clock.now - cr.started_at)

    def _spanmetrics(self) -> Iterable[Sample]:
        ns = self.w.namespace
        for (svc, span, kind, status), acc in self.spans.items():
            base = {**SPAN, "namespace": ns, "service_name": svc, "span_name": span, "span_kind": kind,
                    "status_code": status}
            yield "traces_span_metrics_calls_total", base, acc[0]
            yield "traces_span_metrics_duration_milliseconds_sum", base, acc[1]
            yield "traces_span_metrics_duration_milliseconds_count", base, acc[0]
            for i, le in enumerate(BUCKETS_MS):
                yield "traces_span_metrics_duration_milliseconds_bucket", {**base, "le": str(le)}, acc[2 + i]
            yield "traces_span_metrics_duration_milliseconds_bucket", {**base, "le": "+Inf"}, acc[0]


__all__ = ["Telemetry"]
