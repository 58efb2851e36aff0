"""Requests to a real API server through the official ``kubernetes`` client, for ``KubeCluster``.

``KubeApi`` finds a kind's resource by discovery (the group's preferred version), sends requests with
the dynamic client and returns plain manifest dicts. It turns the API server's refusals into the
protocol's errors (404 ``NotFound``, 409 ``Conflict``, 401/403 a ``ClusterError`` that names the
missing permission, 422 the server's validation message) and retries what is worth retrying: 429,
5xx and dropped connections, with exponential back-off (tenacity). A kind the server does not serve
(Chaos Mesh's without its CRDs) is remembered for ``NOT_SERVED_TTL_S``, and so is its whole API group when
the server has none of it: each miss makes the dynamic client re-read every group's discovery document,
seconds on a busy server, and the analyzers ask for every Chaos Mesh kind at each pass.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.dynamic.resource import ResourceList
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from stratus.cluster.base import ClusterError, Conflict, NotFound
from stratus.cluster.kinds import KINDS

RETRY_ATTEMPTS = 5
NOT_SERVED_TTL_S = 60.0
# Kinds KubeCluster reads for itself but no action names (so they stay out of the kubectl vocabulary).
_READ_KINDS = {"Event": {"group": "", "namespaced": True}, "EndpointSlice": {"group": "discovery.k8s.io", "namespaced": True},
               "ControllerRevision": {"group": "apps", "namespaced": True}}  # rollout undo of StatefulSets, DaemonSets
_RBAC_VERB = {"GET": "get", "LIST": "list", "POST": "create", "PUT": "update", "PATCH": "patch",
              "DELETE": "delete"}


class Retryable(ClusterError):
    """429, 5xx or a dropped connection: the same request may succeed a moment later."""


class NotServed(ClusterError):
    """The API server does not serve the kind (Chaos Mesh's CRDs on a cluster without Chaos Mesh)."""


def api_client(kubeconfig: str | None = None, context: str | None = None,
               in_cluster: bool | None = None) -> k8s.ApiClient:
    """An ``ApiClient`` from a kubeconfig file and context, or from the pod's service account.

    ``in_cluster=None`` picks in-cluster config when no kubeconfig is given and the process runs in a
    pod (``KUBERNETES_SERVICE_HOST`` is set), as ``kubectl`` does.
    """
    if in_cluster is None:
        in_cluster = kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
    if in_cluster:
        cfg = k8s.Configuration()
        k8s_config.load_incluster_config(client_configuration=cfg)
        return k8s.ApiClient(cfg)
    try:
        return k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
    except (k8s_config.ConfigException, OSError) as exc:
        raise ClusterError(f"cannot load kubeconfig {kubeconfig or '~/.kube/config'}"
                           f"{f' context {context}' if context else ''}: {exc}") from exc


def _status(exc: ApiException | DynamicApiError) -> tuple[int, str]:
    body = getattr(exc, "body", None)
    try:
        msg = json.loads(body).get("message", "") if body else ""
    except (ValueError, AttributeError):
        msg = ""
    return int(getattr(exc, "status", 0) or 0), msg or str(getattr(exc, "reason", "")) or str(exc)


def translate(exc: ApiException | DynamicApiError, method: str, resource: str, namespace: str | None) -> ClusterError:
    """The protocol's error for an API refusal; 401/403 name the permission that is missing."""
    status, msg = _status(exc)
    where = f" in namespace {namespace}" if namespace else " (cluster scope)"
    if status == 401:
        return ClusterError(f"unauthorized: the API server rejected the credentials ({msg}); check the "
                            f"kubeconfig user or the service-account token")
    if status == 403:
        return ClusterError(f"forbidden: missing permission `{_RBAC_VERB.get(method, method.lower())}` on "
                            f"{resource}{where}; grant it with a Role/ClusterRole ({msg})")
    if status == 404:
        return NotFound(msg)
    if status == 409:
        return Conflict(msg)
    if status == 429 or status >= 500:
        return Retryable(f"{status}: {msg}")
    return ClusterError(msg)


def _as_parsed(_client: Any, data: Any) -> Any:
    return data


class KubeApi:
    """Dict-in, dict-out requests by kind name, with discovery, error translation and retries."""

    def __init__(self, client: k8s.ApiClient) -> None:
        self.client = client
        self.core = k8s.CoreV1Api(client)
        self._dyn: DynamicClient | None = None
        self._resources: dict[str, Any] = {}
        self._missing: dict[str, float] = {}  # kind, or "group/<name>", -> when found not served (monotonic)

    @property
    def dyn(self) -> DynamicClient:
        """The dynamic client, made on first use: making it asks the server for its API groups."""
        if self._dyn is None:
            self._dyn = self._discover(lambda: DynamicClient(self.client))
        return self._dyn

    @staticmethod
    def _discover(ask: Any) -> Any:
        try:
            return ask()
        except (ApiException, DynamicApiError) as exc:
            raise translate(exc, "GET", "API discovery (/api, /apis)", None) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterError(f"cannot reach the API server {getattr(exc, 'url', '')}: {exc}") from exc

    def resource(self, kind: str) -> Any:
        """The discovered resource for ``kind`` at its group's preferred version."""
        if kind not in self._resources:
            known = KINDS.get(kind) or _READ_KINDS.get(kind)
            if known is None:
                raise ClusterError(f"unknown kind {kind!r}: STRATUS knows {', '.join(sorted(KINDS))}")
            group = known["group"]
            missing = NotServed(f"the server does not serve {kind} (group {group or 'core'})")
            now = time.monotonic()
            if any(now - self._missing.get(k, -NOT_SERVED_TTL_S) < NOT_SERVED_TTL_S for k in (kind, f"group/{group}")):
                raise missing
            try:
                found = self._discover(lambda: self.dyn.resources.search(kind=kind, group=group))
            except ResourceNotFoundError:
                found = []
            hits = [r for r in found if not isinstance(r, ResourceList)]
            if not hits:
                self._missing[kind] = now
                if group and group not in self._discover(lambda: self.dyn.resources.api_groups):
                    self._missing[f"group/{group}"] = now
                raise missing
            self._resources[kind] = next((r for r in hits if r.preferred), hits[0])
        return self._resources[kind]

    def plural(self, kind: str) -> str:
        r = self.resource(kind)
        return f"{r.name}.{r.group}" if r.group else str(r.name)

    @retry(retry=retry_if_exception(lambda e: isinstance(e, Retryable)), stop=stop_after_attempt(RETRY_ATTEMPTS),
           wait=wait_exponential(multiplier=0.2, max=5), reraise=True)
    def call(self, method: str, kind: str, name: str | None = None, namespace: str | None = None,
             body: Any = None, **params: Any) -> dict[str, Any]:
        """One request; ``method`` is GET, LIST, POST, PUT, PATCH or DELETE (LIST: GET on the collection)."""
        r = self.resource(kind)
        ns = namespace if r.namespaced else None
        # the parsed JSON as it is: the client's default wraps it in ResourceInstance, which to_dict()
        # then rebuilds, two walks of every field (most of the client's time on a list of Nodes or Events)
        params["serializer"] = _as_parsed
        try:
            if method in ("GET", "LIST"):
                out = self.dyn.get(r, name=name, namespace=ns, **params)
            elif method == "POST":
                out = self.dyn.create(r, body=body, namespace=ns, **params)
            elif method == "PUT":
                out = self.dyn.replace(r, body=body, name=name, namespace=ns, **params)
            elif method == "PATCH":
                out = self.dyn.patch(r, body=body, name=name, namespace=ns, **params)
            elif method == "DELETE":
                out = self.dyn.delete(r, name=name, namespace=ns, body=body, **params)
            else:
                raise ValueError(f"unknown method {method}")
        except (ApiException, DynamicApiError) as exc:
            raise translate(exc, method, self.plural(kind), ns) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retryable(f"{method} {kind} {name or ''}: {exc}") from exc
        return out.to_dict() if hasattr(out, "to_dict") else dict(out or {})

    @retry(retry=retry_if_exception(lambda e: isinstance(e, Retryable)), stop=stop_after_attempt(RETRY_ATTEMPTS),
           wait=wait_exponential(multiplier=0.2, max=5), reraise=True)
    def pod_log(self, pod: str, namespace: str, **params: Any) -> str:
        try:
            text = self.core.read_namespaced_pod_log(pod, namespace, **params)
            return "" if text is None else str(text)  # the client gives None for an empty body
        except ApiException as exc:
            raise translate(exc, "GET", "pods/log", namespace) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retryable(f"logs of pod {pod}: {exc}") from exc
