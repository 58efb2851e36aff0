"""The workload: request types walk the call graph through the twin's network and processes.

Per tick it yields, for every service and operation, request counts by status and latency
distributions (recorded as span metrics), sampled traces, caller-side error logs, and request-path
crashes (HotelReservation's handlers panic on memcached or MongoDB errors; other apps' services fail the
request and log it, see ``services.py``). Nothing here knows faults:
a call fails because its address does not resolve, nothing ready listens on the target port, a policy
drops the packets, a chaos object delays them, or the callee's own dependency fails.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratus.twin import services
from stratus.twin.store import rfc3339

if TYPE_CHECKING:
    from stratus.twin.world import World

BUCKETS_MS = [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 1500, 2000, 5000, 10000]
SIGMA = 0.45  # lognormal spread of per-request latency around the path's median
MAX_TRACES = 400


@dataclass
class CallResult:
    ok: float  # probability the call succeeds end to end
    latency_ms: float  # median latency of the call as the caller sees it
    error: str = ""  # message of the dominant failure, as the caller would log it
    reached: bool = True  # whether any request reached a server of the callee
    children: list[tuple[str, str, "CallResult"]] = field(default_factory=list)
    own_error: str = ""
    server_ms: float = 0.0  # latency inside the callee (without the network path)


class Traffic:
    def __init__(self, world: "World") -> None:
        self.w = world
        self.traces: deque[dict[str, Any]] = deque(maxlen=MAX_TRACES)
        self.rps_factor = 1.0
        self._trace_seq = 0

    # --- one tick ---------------------------------------------------------------------------
    def step(self, dt: float) -> None:
        w, app = self.w, self.w.app
        total = app.rps * self.rps_factor * (1.0 + 0.03 * w.rng.gauss(0, 1))
        entry_addr = f"{app.entry}:{app.port_of(app.entry)}"
        for rt in app.workload:
            rate = max(0.0, total * float(rt["weight"]))
            res = self._call(None, app.load_generator, app.entry, rt["route"], entry_addr,
                             rt.get("calls", []), rate * dt, depth=0)
            w.telemetry.record_span(app.load_generator, rt["route"], "SPAN_KIND_CLIENT",
                                    rate * dt * res.ok, rate * dt * (1 - res.ok), res.latency_ms,
                                    min(res.latency_ms, app.timeout_ms))
            self._sample_trace(rt["route"], res)

    def _call(self, src: dict[str, Any] | None, src_name: str, svc: str, op: str, address: str,
              children: list[dict[str, Any]], count: float, depth: int) -> CallResult:
        w, app = self.w, self.w.app
        timeout = app.timeout_ms
        dial = w.network.dial(src, address, w.namespace)
        if dial.ok_fraction <= 0.0:
            lat = timeout if dial.error == "timeout" else 1.0
            msg = self._rpc_error(svc, dial.error, dial.message)
            self._log_caller(src, svc, msg)
            return CallResult(0.0, lat, msg, reached=False)
        pods = [w.store.get("Pod", p, w.namespace) for p in dial.pods]
        n_serving = max(1, len(pods))
        reached = count * dial.ok_fraction
        proc = w.kubelet.process(pods[0])
        binary = proc.binary if proc else svc
        spec = app.binaries.get(binary, {})
        cpu_ms = float(spec.get("cpu_ms", 1.0))
        util = min(0.95, (reached / max(w.clock.tick_s, 1e-9)) * cpu_ms / 1000.0 / n_serving)
        own_lat = (1.0 + 2.0 * cpu_ms) / (1.0 - util)
        own_ok, own_err, store_ms = self._own_deps(pods, proc, reached, op)
        ok, lat, err = own_ok, own_lat + store_ms, own_err
        kids: list[tuple[str, str, CallResult]] = []
        remaining = reached * own_ok
        for child in children:
            c_svc, c_op = child["svc"], child["op"]
            c_addr = (proc.env if proc else {}).get(f"{c_svc.upper().replace('-', '_')}_ADDR",
                                                    f"{c_svc}:{app.port_of(c_svc)}")
            res = self._call(pods[0], svc, c_svc, c_op, c_addr, child.get("calls", []), remaining, depth + 1)
            kids.append((c_svc, c_op, res))
            ok *= res.ok
            lat += res.latency_ms
            remaining *= res.ok
            if res.ok < 1.0 and not err:
                err = res.error
        lat += dial.extra_latency_ms
        if lat >= timeout:
            ok, lat = 0.0, timeout
            err = err or "context deadline exceeded"
        ok_server = ok
        ok_total = ok * dial.ok_fraction
        if dial.ok_fraction < 1.0:
            err = err or self._rpc_error(svc, dial.error, dial.message)
            self._log_caller(src, svc, self._rpc_error(svc, dial.error, dial.message))
        w.telemetry.record_span(svc, op, "SPAN_KIND_SERVER", reached * ok_server, reached * (1 - ok_server),
                                lat - dial.extra_latency_ms, lat)
        w.telemetry.record_cpu(pods, reached * cpu_ms / 1000.0)
        if ok < 1.0 and err and depth > 0:
            self._log_caller(src, svc, err)
        return CallResult(ok_total, lat, err, True, kids, own_err, max(0.1, lat - dial.extra_latency_ms))

    def _own_deps(self, pods: list[dict[str, Any]], proc: Any, reached: float,
                  op: str) -> tuple[float, str, float]:
        """Request-path dependencies of the serving process: (share that succeeds, error, added latency
        in ms). HotelReservation's memcached and MongoDB (on cache misses) panic the handler; services
        of a runtime family fail the request (``services.request_deps``)."""
        if proc is None or reached <= 0:
            return 1.0, "", 0.0
        w = self.w
        spec = w.app.binaries.get(proc.binary, {})
        if spec.get("family"):
            return services.request_deps(w, pods[0], proc, op)
        pod = pods[0]
        binary = proc.binary
        if spec.get("memcached") == "request":
            addr = proc.env.get("MEMC_ADDR", "")
            res = w.network.dial(pod, addr, w.namespace)
            if res.ok_fraction < 1.0:
                err = res.message or "memcache: connect timeout"
                msg = {"rate": f"Memmcached error while trying to get hotel [id: [\"1\"]]= {err}",
                       "profile": f"Tried to get hotelIds [\"1\"], but got memmcached error = {err}",
                       }.get(binary, f"Tried to get memc_key [\"1\"], but got memmcached error = {err}")
                self._panic(pod, proc, msg)
                return 0.0, msg, 0.0
        if spec.get("mongo") == "request":
            miss = float(spec.get("miss_ratio", 0.2))
            addr = proc.env.get("MONGO_ADDR", "")
            res = w.network.dial(pod, addr, w.namespace)
            if res.ok_fraction <= 0.0:
                msg = "no reachable servers"
                self._panic(pod, proc, f"Tried to find hotelId [1], but got error {msg}")
                return 1.0 - miss, msg, 0.0
            ok, why = w.db_check(addr, w.namespace, proc.env.get("MONGO_DB", ""), startup=False)
            if not ok:
                db = proc.env.get("MONGO_DB", "")
                msg = (f"not authorized on {db} to execute command {{ find: \"inventory\", filter: {{ hotelId: \"1\" }} }}"
                       if why == "role" else "server returned error on SASL authentication step: Authentication failed.")
                self._panic(pod, proc, f"Tried to find hotelId [1], but got error {msg}")
                return 1.0 - miss, msg, 0.0
        return 1.0, "", 0.0

    def _panic(self, pod: dict[str, Any], proc: Any, msg: str) -> None:
        now = rfc3339(self.w.clock.now)
        container = pod["spec"]["containers"][0]["name"]
        self.w.kubelet.crash(pod, container, 2, [
            f"{now} PNC services/{proc.binary}/server.go:118 > {msg}", f"panic: {msg}", "",
            "goroutine 1183 [running]:", f"github.com/harlow/go-micro-services/services/{proc.binary}.(*Server)"])

    def _rpc_error(self, callee: str, kind: str | None, message: str) -> str:
        if (text := services.rpc_error(self.w, callee, kind, message)) is not None:
            return text
        if kind == "timeout":
            return f"rpc error: code = DeadlineExceeded desc = context deadline exceeded ({message})"
        if kind == "nxdomain":
            return f'rpc error: code = Unavailable desc = connection error: desc = "transport: {message}"'
        return (f'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
                f'{message}"')

    def _log_caller(self, src: dict[str, Any] | None, callee: str, msg: str) -> None:
        if src is None:
            return
        key = (src["metadata"]["name"], msg)
        if self.w.log_throttle.get(key) == self.w.clock.now:
            return
        self.w.log_throttle[key] = self.w.clock.now
        if (lines := services.call_failed(self.w, src, callee, msg)) is not None:
            self.w.logs.write(src, src["spec"]["containers"][0]["name"], lines)
            return
        comp = src["metadata"].get("labels", {}).get(self.w.app.label_key, "")
        self.w.logs.write(src, src["spec"]["containers"][0]["name"], [
            f"{rfc3339(self.w.clock.now)} ERR services/{comp}/server.go:110 > call to {callee} failed: {msg}"])

    # --- traces -----------------------------------------------------------------------------
    def _sample_trace(self, route: str, res: CallResult) -> None:
        w = self.w
        self._trace_seq += 1
        trace_id = f"{w.rng.getrandbits(64):016x}"
        spans: list[dict[str, Any]] = []
        start = w.clock.now

        def emit(caller: str, service: str, op: str, r: CallResult, parent: str | None, t0: float) -> None:
            """A caller's CLIENT span and, when the call reached a server, the callee's SERVER span."""
            cid = f"{w.rng.getrandbits(64):016x}"
            ok = w.rng.random() < r.ok
            jitter = math.exp(SIGMA * w.rng.gauss(0, 0.5))
            status = {"status": "OK"} if ok else {"status": "ERROR", "error": r.error or "unknown error"}
            spans.append({"traceID": trace_id, "spanID": cid, "parentSpanID": parent, "service": caller,
                          "operation": f"{service}/{op}", "kind": "CLIENT", "peer": service, "startTime": t0,
                          "duration_ms": round(r.latency_ms * jitter, 3), **status})
            if not r.reached:
                return
            sid = f"{w.rng.getrandbits(64):016x}"
            spans.append({"traceID": trace_id, "spanID": sid, "parentSpanID": cid, "service": service,
                          "operation": op, "kind": "SERVER", "peer": caller, "startTime": t0,
                          "duration_ms": round(r.server_ms * jitter, 3), **status})
            for c_svc, c_op, c_res in r.children:
                emit(service, c_svc, c_op, c_res, sid, t0)

        emit(w.app.load_generator, w.app.entry, route, res, None, start)
        self.traces.append({"traceID": trace_id, "startTime": start, "spans": spans})
