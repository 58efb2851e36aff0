"""What the twin's kubelet port answers to ``GET /containerLogs/{namespace}/{pod}/{container}``.

Pure functions over plain data, matching the real kubelet of the pinned Kubernetes version
(``pkg/kubelet/server/server.go`` ``getContainerLogs``, ``pkg/kubelet/kubelet_pods.go``
``validateContainerLogStatus``, ``k8s.io/cri-client/pkg/logs`` ``ReadLogs``): query decoding and
validation with the kubelet's status codes and texts, the choice of the current or previous container
instance from the pod's container statuses (the same error texts a user sees through ``kubectl logs``),
and the rendering: ``tailLines`` counted over the whole log first, then lines older than
``sinceSeconds``/``sinceTime`` skipped, ``timestamps`` as the runtime's fixed-width RFC 3339 prefix,
and the output cut at ``limitBytes``, even inside a line. ``follow`` is accepted, but the answer ends
with the lines there are: the twin streams nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # Go's strconv.ParseBool, as the kubelet decodes
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_INT_PARAMS = {"tailLines", "sinceSeconds", "limitBytes"}
_BOOL_PARAMS = {"previous", "timestamps", "follow"}


class LogRequestError(Exception):
    """A refused log request: the HTTP status and the body text the kubelet sends."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


@dataclass
class LogOptions:
    """``v1.PodLogOptions`` as the kubelet receives them in the query string."""

    previous: bool = False
    timestamps: bool = False
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: float | None = None
    limit_bytes: int | None = None
    stream: str | None = None


def parse_options(query: dict[str, list[str]]) -> LogOptions:
    """Decode and validate the query; 400 "Unable to decode query." or 422 "Invalid request." as the kubelet."""
    q = {k: v[-1] for k, v in query.items() if v}
    if "tail" in q:  # the kubelet still honours the old ``tail`` parameter; "all" means no limit
        if q["tail"] == "all":
            q.pop("tailLines", None)
        else:
            q["tailLines"] = q["tail"]
    opts = LogOptions(stream=q.get("stream"))
    try:
        for key in _BOOL_PARAMS & q.keys():
            if q[key] not in _TRUE | _FALSE:
                raise ValueError(key)
            setattr(opts, key, q[key] in _TRUE)
        ints = {k: int(q[k]) for k in _INT_PARAMS & q.keys()}
        if "sinceTime" in q:
            opts.since_time = datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise LogRequestError(400, '{"message": "Unable to decode query."}') from exc
    opts.tail_lines, opts.since_seconds = ints.get("tailLines"), ints.get("sinceSeconds")
    opts.limit_bytes = ints.get("limitBytes")
    invalid = ((opts.tail_lines is not None and opts.tail_lines < 0)
               or (opts.limit_bytes is not None and opts.limit_bytes < 1)
               or (opts.since_seconds is not None and opts.since_seconds < 1)
               or (opts.since_seconds is not None and opts.since_time is not None))
    if invalid:
        raise LogRequestError(422, '{"message": "Invalid request."}')
    if opts.stream not in (None, "All"):
        raise LogRequestError(400, f'unable to return the given log stream: "{opts.stream}". '
                                   "Please enable PodLogsQuerySplitStreams feature gate in kubelet")
    return opts


def check_container(pod: dict[str, Any] | None, name: str, container: str, previous: bool) -> None:
    """Refuse as the kubelet does when the pod, the container or the wanted instance has no log."""
    if pod is None:
        raise LogRequestError(404, f'pod "{name}" does not exist')
    spec = pod.get("spec") or {}
    names = {c.get("name") for key in ("initContainers", "containers", "ephemeralContainers")
             for c in spec.get(key) or []}
    if container not in names:
        raise LogRequestError(404, f'container "{container}" not found in pod "{name}"')
    status = pod.get("status") or {}
    cs = next((s for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
               for s in status.get(key) or [] if s.get("name") == container), None)
    where = f'container "{container}" in pod "{name}"'
    if cs is None:
        raise LogRequestError(400, f"{where} is not available")
    last = (cs.get("lastState") or {}).get("terminated")
    state = cs.get("state") or {}
    if previous:
        if not last or not last.get("containerID"):
            raise LogRequestError(400, f'previous terminated container "{container}" in pod "{name}" not found')
    elif "running" in state:
        return
    elif "terminated" in state:
        if not (state["terminated"] or {}).get("containerID") and not (last and last.get("containerID")):
            raise LogRequestError(400, f"{where} is terminated")
    elif last:
        if not last.get("containerID"):
            raise LogRequestError(400, f"{where} is terminated")
    elif "waiting" in state:
        reason = (state["waiting"] or {}).get("reason", "")
        detail = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise LogRequestError(400, f"{where} is waiting to start: {detail}")
    else:
        raise LogRequestError(400, f"{where} is waiting to start - no logs yet")


def _stamp(t: float) -> str:
    """The runtime's RFC3339NanoFixed: always nine fractional digits, UTC."""
    whole = int(t // 1)
    nanos = int(round((t - whole) * 1e9))
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def render(lines: list[tuple[float, str]], opts: LogOptions, now: float) -> bytes:
    """The body for ``lines`` (oldest first, ``(time, text)``) under ``opts`` at wall time ``now``."""
    if opts.tail_lines is not None:
        lines = lines[-opts.tail_lines:] if opts.tail_lines else []
    since = now - opts.since_seconds if opts.since_seconds is not None else opts.since_time
    out = bytearray()
    for t, text in lines:
        if since is not None and t < since:
            continue
        out += ((_stamp(t) + " ") if opts.timestamps else "").encode() + text.encode() + b"\n"
        if opts.limit_bytes is not None and len(out) >= opts.limit_bytes:
            return bytes(out[:opts.limit_bytes])
    return bytes(out)
