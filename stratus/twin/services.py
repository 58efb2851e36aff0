"""Service processes of apps whose binaries name a runtime *family* (SocialNetwork, the Astronomy Shop).

HotelReservation's Go services are modelled line by line in ``runtime.py``. The other apps' services
are written in C++ (Thrift), Go, .NET, Java, Node, Python, Ruby, PHP, Rust and Kotlin; what differs
between them is data: the log lines each runtime writes at start-up, when a data store it needs at
start-up is unreachable (the process exits), when a store fails on the request path (the request
fails, the process lives on), and when a call to another service fails. Those texts live in the app's
YAML under ``logs.families``; this module only fills them in. Placeholders: ``{time}``, ``{self}``
(component), ``{binary}``, ``{port}``, ``{addr}``, ``{err}``, ``{callee}``, ``{msg}``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stratus.twin.store import rfc3339

if TYPE_CHECKING:
    from stratus.twin.runtime import Process
    from stratus.twin.world import World

DIAL_TIMEOUT_S = 10.0


def stamp(t: float, style: str) -> str:
    """A log timestamp in a runtime's own style: ``boost`` (Boost.Log), ``nginx``, ``epoch_ms``, else
    RFC 3339."""
    if style == "nginx":
        return datetime.fromtimestamp(t, UTC).strftime("%Y/%m/%d %H:%M:%S")
    if style == "boost":
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%b-%d %H:%M:%S.%f")
    if style == "epoch_ms":
        return str(int(t * 1000))
    return rfc3339(t)


def fill(template: str, **values: Any) -> str:
    """Replace ``{name}`` placeholders only (log texts carry JSON braces of their own)."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def family(world: "World", binary: str) -> dict[str, Any] | None:
    """The log family of ``binary``, or None for binaries modelled in ``runtime.py``."""
    name = world.app.binaries.get(binary, {}).get("family")
    if not name:
        return None
    families = world.app.logs.get("families", {})
    if name not in families:
        raise ValueError(f"{world.app.name}: binaries.{binary}.family {name!r} is not in logs.families "
                         f"({', '.join(families)})")
    return dict(families[name])


def _lines(fam: dict[str, Any], key: str, t: float, **values: Any) -> list[str]:
    raw = fam.get(key) or []
    items = [raw] if isinstance(raw, str) else list(raw)
    return [fill(x, time=stamp(t, fam.get("time", "rfc3339")), **values) for x in items]


def start(w: "World", pod: dict[str, Any], proc: "Process", image: dict[str, Any]) -> None:
    """Start ``proc`` as its family does: dial the stores it needs at start-up, then serve or exit."""
    fam = family(w, proc.binary) or {}
    spec = w.app.binaries[proc.binary]
    now, ns = w.clock.now, pod["metadata"]["namespace"]
    comp = pod["metadata"].get("labels", {}).get(w.app.label_key, proc.binary)
    values = {"self": comp, "binary": proc.binary, "port": proc.port if proc.port is not None else ""}
    proc.start_lines = _lines(fam, "start", now, **values)
    if crash := image.get("crash"):
        proc.exit_at, proc.exit_code = now + 2.0, int(fam.get("crash_code", 134))
        proc.exit_lines = [crash, *_lines(fam, "crash", now + 2.0, **values)]
        return
    for kind in spec.get("startup", []):
        addr = w.app.store_address(proc.env, kind)
        res = w.network.dial(pod, addr, ns)
        if res.ok_fraction > 0.0:
            proc.start_lines += _lines(fam, f"{kind}_ok", now, addr=addr, **values)
            continue
        delay = DIAL_TIMEOUT_S if res.error == "timeout" else 1.0
        err = res.message or "connection refused"
        proc.exit_at, proc.exit_code = now + delay, int(fam.get("fatal_code", 1))
        proc.exit_lines = _lines({**fam, **fam.get("store_fatal", {})}, kind, now + delay, addr=addr,
                                 err=err, **values)
        return
    proc.start_lines += _lines(fam, "serving", now, **values)
    proc.serving = True


def request_deps(w: "World", pod: dict[str, Any], proc: "Process", op: str) -> tuple[float, str, float]:
    """The stores ``proc`` touches on the request path: (share of requests that succeed, the error the
    failing ones return, median latency the stores add in ms). Failures are logged by the service.

    A pod running another service's binary on the same port (all Thrift services listen on 9090)
    accepts the connection but does not know the operation: every request fails."""
    fam = family(w, proc.binary) or {}
    spec = w.app.binaries[proc.binary]
    ok, err, extra = 1.0, "", 0.0
    comp = pod["metadata"].get("labels", {}).get(w.app.label_key, proc.binary)
    expected = w.app.components.get(comp, {}).get("binary", proc.binary)
    if proc.binary != expected:
        texts = w.app.logs.get("rpc_errors", {}).get(spec.get("protocol", "grpc"), {})
        return 0.0, fill(texts.get("unknown_method", "unknown method {op}"), op=op, callee=comp), 0.0
    for kind, share in (spec.get("request") or {}).items():
        addr = w.app.store_address(proc.env, kind)
        res = w.network.dial(pod, addr, w.namespace)
        extra += float(share) * res.extra_latency_ms
        if res.ok_fraction >= 1.0:
            continue
        ok *= 1.0 - float(share) * (1.0 - res.ok_fraction)
        errors = fam.get("store_error", {})
        msg = fill(errors.get(kind, "{addr}: {err}"), addr=addr, err=res.message or "i/o timeout", self=comp)
        err = err or msg
        log_once(w, pod, _lines(fam, "request_failed", w.clock.now, msg=msg, self=comp, binary=proc.binary)
                 or [msg])
    return ok, err, extra


def call_failed(w: "World", src: dict[str, Any], callee: str, msg: str) -> list[str] | None:
    """What the caller's runtime logs when a call to ``callee`` fails (None: not a family binary)."""
    comp = src["metadata"].get("labels", {}).get(w.app.label_key, "")
    binary = w.app.components.get(comp, {}).get("binary", "")
    fam = family(w, binary)
    if fam is None:
        return None
    return _lines(fam, "call_failed", w.clock.now, callee=callee, msg=msg, self=comp, binary=binary)


def rpc_error(w: "World", callee: str, kind: str | None, message: str) -> str | None:
    """The error a client library reports for a failed connection to ``callee``, by the callee's
    protocol (None when the app has no such table)."""
    table = w.app.logs.get("rpc_errors")
    if not table:
        return None
    protocol = w.app.binaries.get(w.app.components.get(callee, {}).get("binary", ""), {}).get("protocol", "grpc")
    texts = table.get(protocol) or table["grpc"]
    return fill(texts.get(kind or "refused", texts["refused"]), callee=callee, message=message)


def log_once(w: "World", pod: dict[str, Any], lines: list[str]) -> None:
    """Write ``lines`` to the pod's log at most once per tick (many requests, one log line)."""
    key = (pod["metadata"]["name"], lines[0] if lines else "")
    if w.log_throttle.get(key) == w.clock.now:
        return
    w.log_throttle[key] = w.clock.now
    w.logs.write(pod, pod["spec"]["containers"][0]["name"], lines)
