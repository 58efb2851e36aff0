"""The twin's kubelet: container lifecycle, image pulls, probes, memory limits, restart back-off.

A running container runs a *process* (see ``runtime.py``) whose start-up reads its env, dials its
dependencies and authenticates; the process exits when that fails, and the kubelet's restart back-off
turns repeated exits into CrashLoopBackOff, exactly as on a real node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratus.twin.admission import post_start_error
from stratus.twin.runtime import Process, parse_quantity, start_process
from stratus.twin.store import rfc3339

if TYPE_CHECKING:
    from stratus.twin.world import World

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0


def registry_ref(image: str) -> str:
    """The fully qualified reference containerd pulls: Docker Hub unless the name starts with a registry
    host (``ghcr.io/...``)."""
    return image if "." in image.split("/")[0] and "/" in image else f"docker.io/{image}"


def pull_failure(image: str, first: bool) -> dict[str, str]:
    """The waiting state of a container whose image the registry does not know, as the real kubelet
    writes it: ``ErrImagePull`` on the first failed pull, ``ImagePullBackOff`` while backing off."""
    if first:
        return {"reason": "ErrImagePull",
                "message": f'rpc error: code = NotFound desc = failed to pull and unpack image '
                           f'"{registry_ref(image)}": not found'}
    return {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}


@dataclass
class ContainerRuntime:
    state: str = "new"  # new | pull_backoff | running | crash_backoff | config_error
    next_at: float = 0.0
    backoff: float = 0.0
    restarts: int = 0
    proc: Process | None = None
    pulled: bool = False
    last_terminated: dict[str, Any] | None = None
    probe_fail: int = 0
    probe_ok: int = 0
    liveness_fail: int = 0
    paused_by_chaos: bool = False
    started_at: float = 0.0
    waiting: dict[str, Any] | None = field(default_factory=lambda: {"reason": "ContainerCreating"})


class Kubelet:
    def __init__(self, world: "World") -> None:
        self.w = world
        self.rt: dict[tuple[str, str], ContainerRuntime] = {}

    # --- queries used by the network and traffic model ------------------------------------
    def process(self, pod: dict[str, Any]) -> Process | None:
        for c in pod["spec"]["containers"]:
            cr = self.rt.get((pod["metadata"]["uid"], c["name"]))
            if cr and cr.state == "running" and cr.proc and not cr.paused_by_chaos:
                return cr.proc
        return None

    def listening(self, pod: dict[str, Any], port: int) -> bool:
        for c in pod["spec"]["containers"]:
            cr = self.rt.get((pod["metadata"]["uid"], c["name"]))
            if cr and cr.state == "running" and cr.proc and not cr.paused_by_chaos \
                    and cr.proc.serving and cr.proc.port == port:
                return True
        return False

    def forget(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        for key in [k for k in self.rt if k[0] == uid]:
            del self.rt[key]

    # --- reconcile --------------------------------------------------------------------------
    def sync(self) -> None:
        for pod in list(self.w.store.list("Pod")):
            if pod["spec"].get("nodeName"):
                self._sync_pod(pod)

    def _sync_pod(self, pod: dict[str, Any]) -> None:
        now = self.w.clock.now
        status = pod.setdefault("status", {})
        if "podIP" not in status:
            node_idx = max(0, self.w.app.nodes.index(pod["spec"]["nodeName"])) \
                if pod["spec"]["nodeName"] in self.w.app.nodes else 0
            self.w.ip_counter += 1
            status["podIP"] = f"10.244.{node_idx + 1}.{self.w.ip_counter % 250 + 2}"
            status["hostIP"] = f"172.18.0.{node_idx + 2}"
            status["startTime"] = rfc3339(now)
        paused = bool(self.w.network.chaos_on_pod(pod, "PodChaos"))
        statuses = []
        for c in pod["spec"]["containers"]:
            key = (pod["metadata"]["uid"], c["name"])
            cr = self.rt.setdefault(key, ContainerRuntime())
            self._step(pod, c, cr, paused)
            statuses.append(self._status(c, cr))
        status["containerStatuses"] = statuses
        ever_ran = any(cr.restarts or cr.state == "running"
                       for cr in (self.rt[(pod["metadata"]["uid"], c["name"])] for c in pod["spec"]["containers"]))
        status["phase"] = "Running" if ever_ran else "Pending"
        ready = all(s["ready"] for s in statuses)
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": str(ready),
             **({} if ready else {"reason": "ContainersNotReady"})},
            {"type": "Ready", "status": str(ready), **({} if ready else {"reason": "ContainersNotReady"})},
        ]

    def _status(self, c: dict[str, Any], cr: ContainerRuntime) -> dict[str, Any]:
        st: dict[str, Any] = {"name": c["name"], "image": c.get("image", ""), "restartCount": cr.restarts,
                              "ready": False, "started": cr.state == "running"}
        if cr.state == "running":
            st["state"] = {"running": {"startedAt": rfc3339(cr.started_at)}}
            st["ready"] = self._ready(cr)
        else:
            st["state"] = {"waiting": dict(cr.waiting or {"reason": "ContainerCreating"})}
        if cr.last_terminated:
            st["lastState"] = {"terminated": dict(cr.last_terminated)}
        return st

    def _ready(self, cr: ContainerRuntime) -> bool:
        return bool(cr.proc and cr.proc.serving and not cr.paused_by_chaos and cr.probe_ok > 0)

    def _pod_ref(self, pod: dict[str, Any]) -> str:
        m = pod["metadata"]
        return f"{m['name']}_{m['namespace']}({m['uid']})"

    def _step(self, pod: dict[str, Any], c: dict[str, Any], cr: ContainerRuntime, paused: bool) -> None:
        now, store = self.w.clock.now, self.w.store
        node = pod["spec"]["nodeName"]
        fp = f"spec.containers{{{c['name']}}}"
        image = c.get("image", "")
        if cr.state in ("new", "pull_backoff", "crash_backoff", "config_error") and now < cr.next_at:
            return
        if cr.state in ("new", "pull_backoff"):
            if image not in self.w.app.images:
                first = cr.state == "new"
                cr.backoff = BACKOFF_START if first else min(cr.backoff * 2, BACKOFF_MAX)
                cr.next_at = now + cr.backoff
                store.event(pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet", fp, node)
                ref = registry_ref(image)
                store.event(pod, "Warning", "Failed",
                            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
                            f'unpack image "{ref}": failed to resolve reference "{ref}": '
                            f"{ref.split(':')[0]}: not found", "kubelet", fp, node)
                if first:
                    store.event(pod, "Warning", "Failed", "Error: ErrImagePull", "kubelet", fp, node)
                else:
                    store.event(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', "kubelet", fp, node)
                    store.event(pod, "Warning", "Failed", "Error: ImagePullBackOff", "kubelet", fp, node)
                cr.waiting = pull_failure(image, first)
                cr.state = "pull_backoff"
                return
            if not cr.pulled:
                store.event(pod, "Normal", "Pulled",
                            f'Container image "{image}" already present on machine', "kubelet", fp, node)
                cr.pulled = True
            self._start(pod, c, cr, paused)
            return
        if cr.state in ("crash_backoff", "config_error"):
            self._start(pod, c, cr, paused)
            return
        # running
        self._run(pod, c, cr, paused)

    def _start(self, pod: dict[str, Any], c: dict[str, Any], cr: ContainerRuntime, paused: bool) -> None:
        now, store = self.w.clock.now, self.w.store
        node, fp = pod["spec"]["nodeName"], f"spec.containers{{{c['name']}}}"
        proc, config_error = start_process(self.w, pod, c)
        if config_error:
            cr.state, cr.next_at = "config_error", now + BACKOFF_START
            cr.waiting = {"reason": "CreateContainerConfigError", "message": config_error}
            store.event(pod, "Warning", "Failed", f"Error: {config_error}", "kubelet", fp, node)
            return
        store.event(pod, "Normal", "Created", f"Created container: {c['name']}", "kubelet", fp, node)
        store.event(pod, "Normal", "Started", f"Started container {c['name']}", "kubelet", fp, node)
        cr.state, cr.proc, cr.started_at, cr.waiting = "running", proc, now, None
        cr.probe_fail = cr.liveness_fail = 0
        cr.probe_ok = 0 if c.get("readinessProbe") else 1
        cr.paused_by_chaos = False
        self.w.logs.start(pod, c["name"], proc.start_lines)
        hook = post_start_error(self.w, c)
        if hook:
            store.event(pod, "Warning", "FailedPostStartHook", hook, "kubelet", fp, node)
            self._exit(pod, c, cr, 137, "Error")
            return
        self._run(pod, c, cr, paused, just_started=True)

    def _run(self, pod: dict[str, Any], c: dict[str, Any], cr: ContainerRuntime, paused: bool,
             just_started: bool = False) -> None:
        now = self.w.clock.now
        proc = cr.proc
        assert proc is not None
        if paused != cr.paused_by_chaos:
            # Chaos Mesh pod-failure swaps the image for a pause container: the container restarts.
            cr.paused_by_chaos = paused
            cr.restarts += 1
            cr.started_at = now
            if not paused:
                proc.started_at = now
                self.w.logs.start(pod, c["name"], proc.start_lines)
            return
        if paused:
            return
        limit = parse_quantity((c.get("resources") or {}).get("limits", {}).get("memory"))
        if limit and proc.memory_bytes > limit and now - cr.started_at >= self.w.clock.tick_s:
            self._exit(pod, c, cr, 137, "OOMKilled")
            return
        if proc.exit_at is not None and now >= proc.exit_at:
            self.w.logs.write(pod, c["name"], proc.exit_lines)
            self._exit(pod, c, cr, proc.exit_code, "Error")
            return
        if proc.exit_at is None and cr.backoff and now - cr.started_at > BACKOFF_RESET_AFTER:
            cr.backoff = 0.0
        self._probe(pod, c, cr, "readinessProbe", just_started)
        self._probe(pod, c, cr, "livenessProbe", just_started)

    def _probe(self, pod: dict[str, Any], c: dict[str, Any], cr: ContainerRuntime, which: str,
               just_started: bool) -> None:
        probe = c.get(which)
        if not probe or cr.proc is None:
            return
        now = self.w.clock.now
        if now - cr.started_at < float(probe.get("initialDelaySeconds", 0)):
            return
        ok, msg = cr.proc.probe(probe, pod.get("status", {}).get("podIP", ""))
        threshold = int(probe.get("failureThreshold", 3))
        node, fp = pod["spec"]["nodeName"], f"spec.containers{{{c['name']}}}"
        kind = "Readiness" if which == "readinessProbe" else "Liveness"
        if ok:
            if which == "readinessProbe":
                cr.probe_ok, cr.probe_fail = 1, 0
            else:
                cr.liveness_fail = 0
            return
        self.w.store.event(pod, "Warning", "Unhealthy", f"{kind} probe failed: {msg}", "kubelet", fp, node)
        if which == "readinessProbe":
            cr.probe_fail += 1
            if cr.probe_fail >= threshold:
                cr.probe_ok = 0
        else:
            cr.liveness_fail += 1
            if cr.liveness_fail >= threshold:
                self.w.store.event(pod, "Normal", "Killing",
                                   f"Container {c['name']} failed liveness probe, will be restarted",
                                   "kubelet", fp, node)
                self._exit(pod, c, cr, 143, "Error")

    def _exit(self, pod: dict[str, Any], c: dict[str, Any], cr: ContainerRuntime, code: int,
              reason: str) -> None:
        now = self.w.clock.now
        node, fp = pod["spec"]["nodeName"], f"spec.containers{{{c['name']}}}"
        cr.last_terminated = {"reason": reason, "exitCode": code, "startedAt": rfc3339(cr.started_at),
                              "finishedAt": rfc3339(now)}
        cr.restarts += 1
        cr.backoff = BACKOFF_START if not cr.backoff else min(cr.backoff * 2, BACKOFF_MAX)
        cr.next_at = now + cr.backoff
        cr.state, cr.proc = "crash_backoff", None
        cr.waiting = {"reason": "CrashLoopBackOff",
                      "message": f"back-off {int(cr.backoff)}s restarting failed container={c['name']} "
                                 f"pod={self._pod_ref(pod)}"}
        self.w.store.event(pod, "Warning", "BackOff",
                           f"Back-off restarting failed container {c['name']} in pod {self._pod_ref(pod)}",
                           "kubelet", fp, node)

    def crash(self, pod: dict[str, Any], container: str, code: int, lines: list[str]) -> None:
        """A running process died on the request path (a panic in a handler)."""
        cr = self.rt.get((pod["metadata"]["uid"], container))
        c = next((x for x in pod["spec"]["containers"] if x["name"] == container), None)
        if cr and c and cr.state == "running":
            self.w.logs.write(pod, container, lines)
            self._exit(pod, c, cr, code, "Error")
