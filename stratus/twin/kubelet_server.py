"""The twin's kubelet port: the HTTPS endpoints a real API server proxies to on a node's kubelet.

``kubectl logs`` and ``kubectl exec`` never reach a kubelet directly: the API server looks up the pod's
Node, takes its preferred address and ``status.daemonEndpoints.kubeletEndpoint.Port`` and proxies the
request there. ``KubeletServer`` answers those requests for the twin's nodes (one server can stand
behind every node, since pods are named by namespace and name):

- ``GET /healthz``: ``ok``.
- ``GET /containerLogs/{namespace}/{pod}/{container}``: the container's log from an object with the
  twin's ``Logs`` interface, with the kubelet's options, status codes and error texts
  (``kubelet_logs``).
- ``GET /exec/{namespace}/{pod}/{container}?command=...``: a WebSocket (``v5.channel.k8s.io``, or
  ``v4.channel.k8s.io``) carrying the command's stdout (channel 1), stderr (2) and its exit status as a
  ``metav1.Status`` (3), the command run by ``exec_handler``. Kubernetes 1.36+ API servers proxy
  WebSocket exec to a kubelet whose Node lists ``ExtendWebSocketsToKubelet`` in
  ``status.declaredFeatures``; SPDY upgrade requests are refused with a message saying so.

The server speaks HTTPS with a self-signed certificate made at start (API servers started without
``--kubelet-certificate-authority`` do not verify kubelet certificates), listens on loopback only and
serves each connection in its own thread (``websockets``' threaded server; plain HTTP requests are
answered from its ``process_request`` hook before any WebSocket handshake).
"""

from __future__ import annotations

import datetime
import http
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from stratus.twin.kubelet_logs import LogRequestError, check_container, parse_options, render

WEBSOCKET_FEATURE = "ExtendWebSocketsToKubelet"  # what a Node declares so the API server proxies WebSockets
SUBPROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
STDOUT, STDERR, ERROR = 1, 2, 3
READ_ATTEMPTS = 5
_TRUE = {"1", "true", "True", "t"}


class LogReader(Protocol):
    """The read side of the twin's ``Logs`` (``stratus.twin.world.Logs``)."""

    def read(self, namespace: str, pod: str, container: str | None,
             previous: bool = False) -> list[tuple[float, str]]: ...


PodLookup = Callable[[str, str], "dict[str, Any] | None"]
"""``(namespace, name)`` -> the pod manifest (spec and status) as this kubelet knows it, or None."""
ExecHandler = Callable[[str, str, str, list[str]], tuple[int, str, str]]
"""``(namespace, pod, container, argv)`` -> ``(exit code, stdout, stderr)``."""


def self_signed_context(host: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``host`` (an IP address)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stratus-twin-kubelet")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only: write them to a private directory that is gone once loaded.
    with tempfile.TemporaryDirectory(prefix="stratus-kubelet-") as tmp:
        crt, pem = Path(tmp) / "kubelet.crt", Path(tmp) / "kubelet.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        ctx.load_cert_chain(str(crt), str(pem))
    return ctx


def exit_status(code: int, argv: list[str]) -> dict[str, Any]:
    """The ``metav1.Status`` a kubelet writes on the error channel when a command has ended."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(argv)}], exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


class KubeletServer:
    """The kubelet endpoints over ``logs``, ``pods`` and (optionally) ``exec_handler``.

    Args:
        logs: container logs (``read(namespace, pod, container, previous)``).
        pods: looks up a pod this kubelet runs (see ``PodLookup``); logs and exec need its spec and status.
        exec_handler: runs a command in a container; without one, exec answers 501.
        host: the loopback address to listen on.
        port: the port; 0 picks a free one (read ``port`` after construction).
        clock: wall time, for ``sinceSeconds``.
    """

    def __init__(self, logs: LogReader, pods: PodLookup, exec_handler: ExecHandler | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the twin's kubelet port listens on loopback only, not {host}")
        self.logs, self.pods, self.exec_handler, self.clock = logs, pods, exec_handler, clock
        self.host = host
        self._server: Server = serve(self._exec, host, port, ssl=self_signed_context(host),
                                     subprotocols=SUBPROTOCOLS,  # type: ignore[arg-type]
                                     process_request=self._http, compression=None, ping_interval=None)
        self.port = int(self._server.socket.getsockname()[1])
        self._thread: threading.Thread | None = None

    @property
    def serving(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> KubeletServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="twin-kubelet-port", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread is None:  # never served: shutdown() would wait for a serve_forever that never ran
            self._server.socket.close()
            return
        self._server.shutdown()
        self._thread.join(timeout_s)

    # --- plain HTTP ---------------------------------------------------------------------------
    def _http(self, _conn: ServerConnection, request: Request) -> Response | None:
        """Answer everything but an accepted exec upgrade; None lets the WebSocket handshake go on."""
        url = urlsplit(request.path)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qs(url.query, keep_blank_values=True)
        if parts == ["healthz"]:
            return _text(200, "ok")
        if len(parts) == 4 and parts[0] == "containerLogs":
            return self._logs(parts[1], parts[2], parts[3], query)
        if len(parts) == 4 and parts[0] == "exec":
            return self._exec_check(request, parts[1], parts[2], parts[3], query)
        return _text(404, "404 page not found")

    def _logs(self, ns: str, name: str, container: str,
              query: dict[str, list[str]]) -> Response:
        try:
            opts = parse_options(query)
            check_container(self.pods(ns, name), name, container, opts.previous)
        except LogRequestError as exc:
            return _text(exc.status, exc.text)
        return _body(200, render(self._read(ns, name, container, opts.previous), opts, self.clock()))

    def _read(self, ns: str, name: str, container: str, previous: bool) -> list[tuple[float, str]]:
        # The twin appends to its log buffers from its own thread; a read that races an append fails
        # with "deque mutated during iteration" and simply reads again.
        for _ in range(READ_ATTEMPTS - 1):
            try:
                return self.logs.read(ns, name, container, previous)
            except RuntimeError:
                continue
        return self.logs.read(ns, name, container, previous)

    def _exec_check(self, request: Request, ns: str, name: str, container: str,
                    query: dict[str, list[str]]) -> Response | None:
        if self.exec_handler is None:
            return _text(501, "exec is not served by this twin kubelet (no exec handler attached)")
        pod = self.pods(ns, name)
        if pod is None:
            return _text(404, "pod does not exist")
        if not query.get("command"):
            return _text(400, "you must specify at least 1 command")
        if container not in {c.get("name") for c in (pod.get("spec") or {}).get("containers") or []}:
            return _text(404, f'container "{container}" not found in pod "{name}"')
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return _text(400, "the twin kubelet serves exec over WebSocket only ("
                         + ", ".join(SUBPROTOCOLS) + f"; its Node declares {WEBSOCKET_FEATURE}), "
                         f"not over {request.headers.get('Upgrade') or 'plain HTTP'}")
        return None

    # --- exec over WebSocket ------------------------------------------------------------------
    def _exec(self, conn: ServerConnection) -> None:
        assert conn.request is not None and self.exec_handler is not None
        url = urlsplit(conn.request.path)
        _, ns, name, container = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qs(url.query, keep_blank_values=True)
        argv = query["command"]
        # The API server names the streams as the kubelet API does (core ExecStdoutParam = "output", ...).
        want = {ch: query.get(key, [""])[-1] in _TRUE for ch, key in ((STDOUT, "output"), (STDERR, "error"))}
        # An empty frame on the lowest writable channel tells the client the streams are open.
        conn.send(bytes([STDOUT if want[STDOUT] else STDERR if want[STDERR] else ERROR]))
        try:
            code, out, err = self.exec_handler(ns, name, container, argv)
        except Exception as exc:  # the handler's failure is the command's: report it, keep serving
            code, out, err = 126, "", f"{type(exc).__name__}: {exc}\n"
        for ch, data in ((STDOUT, out), (STDERR, err)):
            if want[ch] and data:
                conn.send(bytes([ch]) + data.encode())
        conn.send(bytes([ERROR]) + json.dumps(exit_status(code, argv)).encode())
        conn.close()


def _body(status: int, body: bytes) -> Response:
    headers = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                       ("Connection", "close")])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _text(status: int, text: str) -> Response:
    return _body(status, text.encode())
