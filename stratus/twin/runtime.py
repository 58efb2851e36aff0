"""Application processes in the twin: what a container's binary does when it starts.

A process reads its env (the twin's stand-in for HotelReservation's config.json), dials its database,
memcached and Consul through the twin's network, authenticates against the database's real accounts,
and either serves on its port or exits with the log lines and exit code the real binary would produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratus.twin import services
from stratus.twin.store import rfc3339

if TYPE_CHECKING:
    from stratus.twin.world import World

MONGO_DIAL_TIMEOUT_S = 10.0
_QTY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3,
          "Ti": 1024**4, "m": 1e-3}


def parse_quantity(q: Any) -> float | None:
    """Kubernetes resource quantity to a float in base units (bytes, cores)."""
    if q is None or q == "":
        return None
    m = _QTY.match(str(q).strip())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"invalid quantity {q!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class Process:
    binary: str
    port: int | None
    protocol: str
    started_at: float
    memory_bytes: float
    serving: bool = False
    exit_at: float | None = None
    exit_code: int = 0
    exit_lines: list[str] = field(default_factory=list)
    start_lines: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def probe(self, probe: dict[str, Any], pod_ip: str) -> tuple[bool, str]:
        if "exec" in probe:
            cmd = probe["exec"].get("command") or []
            return (bool(cmd) and cmd[0] in ("true", "/bin/true", "grpc_health_probe"),
                    f"OCI runtime exec failed: exec: \"{cmd[0] if cmd else ''}\": executable file not found")
        handler = probe.get("tcpSocket") or probe.get("httpGet") or probe.get("grpc") or {}
        port = handler.get("port")
        try:
            port_no = int(port)  # type: ignore[arg-type]  # None and junk fall to the except
        except (TypeError, ValueError):
            port_no = -1
        if not self.serving or port_no != self.port:
            if "httpGet" in probe:
                path = probe["httpGet"].get("path", "/")
                return False, (f'Get "http://{pod_ip}:{port}{path}": dial tcp {pod_ip}:{port}: '
                               f"connect: connection refused")
            return False, f"dial tcp {pod_ip}:{port}: connect: connection refused"
        if "httpGet" in probe and self.protocol != "http":
            path = probe["httpGet"].get("path", "/")
            return False, f'Get "http://{pod_ip}:{port}{path}": net/http: HTTP/1.x transport connection broken'
        return True, ""


def _zl(t: float, level: str, caller: str, msg: str) -> str:
    return f"{rfc3339(t)} {level} {caller} > {msg}"


def _resolve_env(w: "World", pod: dict[str, Any], c: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    env: dict[str, str] = {}
    ns = pod["metadata"]["namespace"]
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = str(e["value"])
            continue
        ref = (e.get("valueFrom") or {})
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in ref:
                name, k = ref[key].get("name"), ref[key].get("key")
                if not w.store.exists(kind, name, ns):
                    return {}, f'{kind.lower()} "{name}" not found'
                data = w.store.get(kind, name, ns).get("data") or {}
                if k not in data:
                    return {}, f"couldn't find key {k} in {kind} {ns}/{name}"
                env[e["name"]] = str(data[k])
    return env, None


def start_process(w: "World", pod: dict[str, Any], c: dict[str, Any]) -> tuple[Process, str | None]:
    """Start the container's process. Returns (process, config error that prevents creation)."""
    now = w.clock.now
    env, err = _resolve_env(w, pod, c)
    image = w.app.images.get(c.get("image", ""), {})
    cmd = (c.get("command") or []) + (c.get("args") or [])
    binaries = image.get("binaries", [])
    binary = cmd[0] if c.get("command") else (binaries[0] if len(binaries) == 1 else "")
    spec = w.app.binaries.get(binary)
    ns = pod["metadata"]["namespace"]
    if err:
        return Process(binary, None, "tcp", now, 0), err
    if binary not in binaries or spec is None:
        proc = Process(binary or "<none>", None, "tcp", now, 0)
        proc.exit_at, proc.exit_code = now, 128
        proc.exit_lines = [f'exec: "{binary}": executable file not found in $PATH']
        return proc, None
    mem = float(spec.get("memory_mi", 32)) * 1024**2 * (1.0 + 0.02 * w.rng.random())
    port = int(spec["port"]) if spec.get("port") is not None else None
    proc = Process(binary, port, spec.get("protocol", "grpc"), now, mem, env=env)
    kind = spec.get("kind", "app")
    if kind != "app":
        proc.serving = True
        templates = w.app.logs.get("store_start", {}).get(kind)
        proc.start_lines = ([services.fill(x, time=rfc3339(now), port=port) for x in templates] if templates
                            else [f"{rfc3339(now)} {binary} starting, listening on port {spec['port']}"])
        return proc, None
    if spec.get("family"):
        services.start(w, pod, proc, image)
        return proc, None
    lines = [
        f'{{"level":"info","time":"{rfc3339(now)}","message":"TLS disabled."}}',
        f'{{"level":"info","time":"{rfc3339(now)}","message":"Set global log level: info"}}',
        f'{{"level":"info","time":"{rfc3339(now)}","message":"Tune: setGCPercent to 100"}}',
        _zl(now, "INF", f"cmd/{binary}/main.go:23", "Reading config..."),
    ]
    proc.start_lines = lines
    if crash := image.get("crash"):
        lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:31", "Starting server..."))
        proc.exit_at, proc.exit_code = now + 2.0, 2
        proc.exit_lines = [crash, "", "goroutine 1 [running]:", "main.main()",
                           f"\t/go/src/github.com/harlow/go-micro-services/cmd/{binary}/main.go:58 +0x1d4"]
        return proc, None

    def fail(delay: float, code: int, msgs: list[str]) -> tuple[Process, None]:
        proc.exit_at, proc.exit_code, proc.exit_lines = now + delay, code, msgs
        return proc, None

    if spec.get("mongo"):
        addr = env.get("MONGO_ADDR", "")
        lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:36", f"Read database URL: {addr}"))
        lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:37", "Initializing DB connection..."))
        res = w.network.dial(pod, addr, ns)
        if res.ok_fraction <= 0.0:
            t = now + MONGO_DIAL_TIMEOUT_S
            return fail(MONGO_DIAL_TIMEOUT_S, 2, [
                _zl(t, "PNC", f"cmd/{binary}/db.go:26", "no reachable servers"),
                "panic: no reachable servers", "", "goroutine 1 [running]:",
                "github.com/rs/zerolog.(*Logger).Panic.func1({0xc0000a4000, 0x14})",
                "main.initializeDatabase({0xc00002a0c0, 0x11})",
                f"\t/go/src/github.com/harlow/go-micro-services/cmd/{binary}/db.go:26 +0x167",
                "main.main()"])
        ok, auth_err = w.db_check(addr, ns, env.get("MONGO_DB", ""), startup=True)
        if auth_err == "auth":
            return fail(1.0, 2, [
                _zl(now, "PNC", f"cmd/{binary}/db.go:29",
                    "server returned error on SASL authentication step: Authentication failed."),
                "panic: server returned error on SASL authentication step: Authentication failed.",
                "", "goroutine 1 [running]:", "main.initializeDatabase(...)"])
        lines.append(_zl(now, "INF", f"cmd/{binary}/db.go:29", "New session successfull..."))
        if spec.get("mongo") == "startup" or binary in ("geo", "rate"):
            lines.append(_zl(now, "INF", f"cmd/{binary}/db.go:31", "Generating test data..."))
            if auth_err == "role":
                db = env.get("MONGO_DB", "")
                coll = {"geo": "geo", "rate": "inventory"}.get(binary, binary)
                return fail(1.0, 1, [_zl(now, "FTL", f"cmd/{binary}/db.go:46",
                                         f'not authorized on {db} to execute command {{ count: "{coll}", '
                                         f'query: {{ hotelId: "1" }}, $db: "{db}" }}')])
        lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:40", "Successfull"))
    if spec.get("memcached"):
        addr = env.get("MEMC_ADDR", "")
        lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:44", f"Read {binary} memcashed address: {addr}"))
        lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:45", "Initializing Memcashed client..."))
        lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:47", "Successfull"))
    lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:52", f"Read target port: {spec['port']}"))
    consul = env.get("CONSUL_ADDR", "")
    lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:53", f"Read consul address: {consul}"))
    lines.append(_zl(now, "INF", "tracing/tracer.go:26", "Initializing jaeger agent..."))
    lines.append(_zl(now, "INF", "tracing/tracer.go:42", "Jaeger agent initialized"))
    lines.append(_zl(now, "INF", "registry/registry.go:20", "Initializing consul agent..."))
    lines.append(_zl(now, "INF", "registry/registry.go:25", "Consul agent initialized"))
    lines.append(_zl(now, "INF", f"cmd/{binary}/main.go:70", "Starting server..."))
    if spec.get("register", True):
        res = w.network.dial(pod, consul, ns)
        if res.ok_fraction <= 0.0:
            delay = 10.0 if res.error == "timeout" else 1.0
            return fail(delay, 1, [_zl(now + delay, "FTL", f"cmd/{binary}/main.go:78",
                                       f'failed register: Put "http://{consul}/v1/agent/service/register": '
                                       f"{res.message}")])
        lines.append(_zl(now, "INF", "registry/registry.go:91",
                         f"Trying to register service [ name: srv-{binary}, id: {w.store.new_uid()}, "
                         f"address: {pod.get('status', {}).get('podIP', '')}:{spec['port']} ]"))
        lines.append(_zl(now, "INF", "registry/registry.go:98", "Successfully registered in consul"))
    proc.serving = True
    return proc, None
