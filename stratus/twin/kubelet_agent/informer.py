"""What the agent reads from the API server: one watch of all pods, periodic lists of other kinds.

``PodWatch`` lists pods once and then watches them (a bounded watch that is re-opened, and re-listed
after 410 Gone), keeping only the changes of pods bound to the agent's nodes for the next pass, so a
pass costs nothing for pods that did not change. ``list_objects`` reads the kinds the twin's models read
(Services, Endpoints, ConfigMaps, Secrets, NetworkPolicies, Deployments, Nodes) from the API server's
watch cache (``resourceVersion=0``). Bodies stay raw JSON (plain manifests), never client models.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3.exceptions import HTTPError

from stratus.twin.kubelet_agent.nodes import REQUEST_TIMEOUT_S

WATCH_S = 5  # one watch request lasts at most this long, so stop() is honoured within it
RETRY_S = 1.0

# kind -> (apiVersion, API group attribute, list method), read every objects interval
KINDS: dict[str, tuple[str, str, str]] = {
    "Service": ("v1", "core", "list_service_for_all_namespaces"),
    "Endpoints": ("v1", "core", "list_endpoints_for_all_namespaces"),
    "ConfigMap": ("v1", "core", "list_config_map_for_all_namespaces"),
    "Secret": ("v1", "core", "list_secret_for_all_namespaces"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networking", "list_network_policy_for_all_namespaces"),
    "Deployment": ("apps/v1", "apps", "list_deployment_for_all_namespaces"),
    "Node": ("v1", "core", "list_node"),
}


def _raw_list(fn: Any, api_version: str, kind: str) -> tuple[list[dict[str, Any]], str]:
    resp = fn(resource_version="0", _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S)
    body = json.loads(resp.data)
    items = body.get("items") or []
    for obj in items:  # list items come without their kind
        obj["apiVersion"], obj["kind"] = api_version, kind
    return items, body["metadata"].get("resourceVersion", "")


def decoded_secret(obj: dict[str, Any]) -> dict[str, Any]:
    """A Secret as the twin's models read it: ``data`` values as text (a container sees them decoded)."""
    data = {}
    for k, v in (obj.get("data") or {}).items():
        try:
            data[k] = base64.b64decode(v).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            data[k] = ""
    return {**obj, "data": data}


def list_objects(apis: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every object of ``KINDS`` (one list request per kind)."""
    out = {}
    for kind, (api_version, group, method) in KINDS.items():
        items, _ = _raw_list(getattr(apis[group], method), api_version, kind)
        out[kind] = [decoded_secret(o) for o in items] if kind == "Secret" else items
    return out


class PodWatch:
    """Pods bound to ``nodes``, kept current by a watch in a daemon thread.

    ``take()`` hands the changes since the last call to the pass: uid -> (event type, pod), the latest
    state of each pod (``DELETED`` when gone).
    """

    def __init__(self, core: Any, nodes: set[str]) -> None:
        self.core = core
        self.nodes = nodes
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[str, dict[str, Any]]] = {}
        self._known: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="twin-kubelet-pods", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = WATCH_S + REQUEST_TIMEOUT_S) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def take(self) -> dict[str, tuple[str, dict[str, Any]]]:
        with self._lock:
            out, self._pending = self._pending, {}
        return out

    def _offer(self, type_: str, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        ours = pod.get("spec", {}).get("nodeName") in self.nodes
        with self._lock:
            if ours and type_ != "DELETED":
                self._known.add(uid)
                self._pending[uid] = (type_, pod)
            elif uid in self._known:
                self._known.discard(uid)
                self._pending[uid] = ("DELETED", pod)

    def _run(self) -> None:
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._relist()
                rv = self._watch(rv)
            except (ApiException, HTTPError, OSError, ValueError, KeyError):
                rv = ""  # 410 Gone, a dropped connection or a garbled line: list again
                self._stop.wait(RETRY_S)

    def _relist(self) -> str:
        pods, rv = _raw_list(self.core.list_pod_for_all_namespaces, "v1", "Pod")
        seen = {p["metadata"]["uid"] for p in pods}
        for pod in pods:
            self._offer("MODIFIED", pod)
        with self._lock:
            gone = self._known - seen
        for uid in gone:
            self._offer("DELETED", {"metadata": {"uid": uid}})
        self.synced.set()
        return rv

    def _watch(self, rv: str) -> str:
        resp = self.core.list_pod_for_all_namespaces(
            watch=True, resource_version=rv, timeout_seconds=WATCH_S, allow_watch_bookmarks=True,
            _preload_content=False, _request_timeout=(REQUEST_TIMEOUT_S, WATCH_S + REQUEST_TIMEOUT_S))
        try:
            for line in iter_resp_lines(resp):
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                ev = json.loads(line)
                obj = ev["object"]
                if ev["type"] == "ERROR":
                    return ""  # usually 410 Gone: the resource version is too old
                rv = obj["metadata"]["resourceVersion"]
                if ev["type"] != "BOOKMARK":
                    self._offer(ev["type"], obj)
        finally:
            resp.close()
            resp.release_conn()
        return rv
