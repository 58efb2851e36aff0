"""``kubectl exec`` for ``KubeCluster``: the target pod and container, the command over ``pods/exec``.

The official client's ``kubernetes.stream`` opens the ``pods/exec`` WebSocket (``v5.channel.k8s.io``,
falling back to ``v4``) to the API server, which proxies it to the node's kubelet; stdout, stderr and
the exit status (a ``metav1.Status`` on channel 3) come back. The target is chosen as kubectl does: a
Pod by name, a workload by one of its pods (ready and running ones first); the container is the one
named, else the pod's ``kubectl.kubernetes.io/default-container``, else its first. A refused upgrade
becomes the protocol's error (403 names the ``get`` and ``create`` on ``pods/exec`` it needs).
"""

from __future__ import annotations

import json
import re
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from stratus.cluster.actions import Action
from stratus.cluster.base import ClusterError, NotFound
from stratus.cluster.kubeapi import KubeApi

EXEC_TIMEOUT_S = 60.0
# A WebSocket exec is a GET, authorized as `get`; since v1.35 the API server also checks `create`
# (feature gate AuthorizePodWebsocketUpgradeCreatePermission, on by default).
EXEC_VERBS = ("get", "create")
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
_HANDSHAKE = re.compile(r"Handshake status (\d{3})")


def target(api: KubeApi, a: Action, ns: str) -> tuple[str, str]:
    """The (pod, container) ``kubectl exec`` would run ``a`` in."""
    if a.kind == "Pod":
        pod = api.call("GET", "Pod", a.name, ns)
    else:
        owner = api.call("GET", a.kind, a.name, ns)
        sel = ((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        pods = api.call("LIST", "Pod", namespace=ns,
                        label_selector=",".join(f"{k}={v}" for k, v in sel.items()) or None).get("items", [])
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if not live:
            raise ClusterError(f"no pod of {a.kind.lower()}/{a.name} in namespace {ns} to exec into")
        pod = min(live, key=_rank)
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    if status.get("phase") in ("Succeeded", "Failed"):
        raise ClusterError(f"cannot exec into a container in a completed pod; current phase is {status['phase']}")
    containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    wanted = a.params.get("container") or (pod["metadata"].get("annotations") or {}).get(DEFAULT_CONTAINER)
    container = wanted or containers[0]
    if container not in containers:
        raise ClusterError(f"container {container} is not valid for pod {name} (its containers: "
                           f"{', '.join(containers)})")
    return name, container


def _rank(pod: dict[str, Any]) -> tuple[int, int, str]:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return (0 if ready else 1, 0 if status.get("phase") == "Running" else 1, pod["metadata"]["name"])


def missing_verbs(api: KubeApi, ns: str) -> list[str]:
    """The ``EXEC_VERBS`` on ``pods/exec`` in ``ns`` the credentials lack (SelfSubjectAccessReviews)."""
    authz: Any = k8s.AuthorizationV1Api(api.client)  # the body is a plain manifest, as everywhere here
    missing = []
    for verb in EXEC_VERBS:
        review = authz.create_self_subject_access_review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "resource": "pods",
                                            "subresource": "exec"}}})
        if not review.status.allowed:
            missing.append(verb)
    return missing


def forbidden(ns: str, verbs: list[str], detail: str = "") -> ClusterError:
    return ClusterError(f"forbidden: missing permission {' and '.join(f'`{v}`' for v in verbs)} on pods/exec in "
                        f"namespace {ns}; grant it with a Role/ClusterRole" + (f" ({detail})" if detail else ""))


def run(api: KubeApi, pod: str, ns: str, container: str, argv: list[str]) -> tuple[int, str, str]:
    """Run ``argv`` in the container: (exit code, stdout, stderr). Bounded by ``EXEC_TIMEOUT_S``."""
    try:
        ws = stream(api.core.connect_get_namespaced_pod_exec, pod, ns, command=argv, container=container,
                    stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
    except ApiException as exc:
        raise refusal(exc, pod, ns) from exc
    try:
        ws.run_forever(timeout=EXEC_TIMEOUT_S)
        if ws.is_open():
            raise ClusterError(f"exec in pod {ns}/{pod} did not finish within {EXEC_TIMEOUT_S:.0f} s")
        out, err = ws.read_stdout(), ws.read_stderr()
        return int(ws.returncode), out, err
    finally:
        ws.close()


def refusal(exc: ApiException, pod: str, ns: str) -> ClusterError:
    """The protocol's error for a refused exec upgrade (the client reports it as status 0 with the
    handshake's status line and body in its reason)."""
    text = str(exc.reason or exc)
    m = _HANDSHAKE.search(text)
    status = int(m.group(1)) if m else exc.status
    body = text[text.find("{", text.rfind("-+-+-")):] if "-+-+-" in text else ""
    try:
        msg = json.loads(body.rstrip("'")).get("message", text)
    except ValueError:
        msg = text
    if status == 403:
        return forbidden(ns, list(EXEC_VERBS), msg)
    if status == 404:
        return NotFound(msg)
    return ClusterError(f"exec in pod {ns}/{pod} refused ({status}): {msg}")
