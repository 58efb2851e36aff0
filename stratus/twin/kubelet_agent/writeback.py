"""What the agent writes back, shaped as a kubelet writes it: pod status and Events.

``api_status`` turns the twin kubelet's pod status into the API's (transition times kept while a
condition holds, pod and host IP lists, container IDs that change with each restart); the agent writes
it only when it changed. ``event_body`` turns an event of the twin's store into a core/v1 Event; a
repeated event is written once and then has its ``count`` and ``lastTimestamp`` bumped, as the real
kubelet's event recorder aggregates.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from stratus.twin.kubelet_agent.nodes import REQUEST_TIMEOUT_S, rfc3339


@dataclass
class PodMemo:
    """What the agent remembers of one pod between passes (a kubelet's pod cache), keyed by uid."""

    namespace: str
    name: str
    pod_ip: str
    host_ip: str
    started_at: float
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)  # condition -> (status, time)
    written: dict[str, Any] | None = None  # the status last written to the API
    raw: dict[str, Any] | None = None  # the twin kubelet's status it was made from


def api_status(pod: dict[str, Any], memo: PodMemo, now: float) -> dict[str, Any]:
    status = copy.deepcopy(pod.get("status") or {})
    status["hostIPs"], status["podIPs"] = [{"ip": memo.host_ip}], [{"ip": memo.pod_ip}]
    for cond in status.get("conditions", []):
        seen = memo.transitions.get(cond["type"])
        if seen is None or seen[0] != cond["status"]:
            seen = memo.transitions[cond["type"]] = (cond["status"], rfc3339(now))
        cond["lastTransitionTime"] = seen[1]
        if cond.get("reason") == "ContainersNotReady":
            cond["message"] = "containers with unready status: [" + " ".join(
                c["name"] for c in status.get("containerStatuses", []) if not c.get("ready")) + "]"
    uid = pod["metadata"]["uid"]
    for cs in status.get("containerStatuses", []):
        cs["imageID"] = ""
        if "running" in cs.get("state", {}):
            cs["containerID"] = f"twin://{uid[:8]}-{cs['name']}-{cs.get('restartCount', 0)}"
    return status


def event_body(ev: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in ev.items() if not k.startswith("_")}
    body["reportingInstance"] = (ev.get("source") or {}).get("host", "")
    return body


def write_status(core: Any, pod: dict[str, Any], status: dict[str, Any]) -> None:
    m = pod["metadata"]
    try:
        core.patch_namespaced_pod_status(m["name"], m["namespace"], {"status": status},
                                         _request_timeout=REQUEST_TIMEOUT_S, _preload_content=False)
    except ApiException as exc:
        if exc.status != 404:  # deleted meanwhile: nothing to report on
            raise


def write_event(core: Any, ev: dict[str, Any]) -> None:
    """Create the event, or bump its count when it was written before."""
    meta = ev["metadata"]
    sent = ev.get("_sent")
    try:
        if sent is None:
            try:
                core.create_namespaced_event(meta["namespace"], event_body(ev),
                                             _request_timeout=REQUEST_TIMEOUT_S, _preload_content=False)
                ev["_sent"] = ev["count"]
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
        core.patch_namespaced_event(meta["name"], meta["namespace"],
                                    {"count": ev["count"], "lastTimestamp": ev["lastTimestamp"]},
                                    _request_timeout=REQUEST_TIMEOUT_S, _preload_content=False)
        ev["_sent"] = ev["count"]
    except ApiException as exc:
        # 404: the event expired meanwhile; 403: its namespace is being deleted
        if exc.status not in (403, 404):
            raise


def delete_pod(core: Any, pod: dict[str, Any]) -> None:
    """Finish a graceful deletion: the containers are stopped, so the pod object goes. The options go in
    the body (the API server ignores query parameters when there is one), as the kubelet's status manager
    sends them."""
    m = pod["metadata"]
    try:
        core.delete_namespaced_pod(m["name"], m["namespace"],
                                   body={"gracePeriodSeconds": 0, "preconditions": {"uid": m["uid"]}},
                                   _request_timeout=REQUEST_TIMEOUT_S, _preload_content=False)
    except ApiException as exc:
        if exc.status not in (404, 409):
            raise
