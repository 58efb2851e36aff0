"""Log analyzer: known failure signatures in recent pod logs (and the previous container's, after a crash).

The signatures are data (``data/log_signatures.yaml``); a line that matches names the component to
blame: the pod's own, or the one its ``via`` env var points at.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from stratus.cluster.base import epoch
from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View
from stratus.tools.redact import redact_text

LOG_TAIL = 60
LOG_WINDOW_S = 900.0

LOG_SIGNATURES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(s["pattern"]), s["signal"], s["via"])
    for s in yaml.safe_load((Path(__file__).parent / "data" / "log_signatures.yaml").read_text())["signatures"]
]
"""(regex, signal, env var naming the blamed component), in match order."""


def _crashed_recently(pod: dict[str, Any], now: float, window_s: float = 300.0) -> bool:
    """Not Ready now, or a container terminated within the window: its previous log explains why."""
    for cs in pod.get("status", {}).get("containerStatuses", []):
        if not cs.get("restartCount"):
            continue
        if not cs.get("ready"):
            return True
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if finished and now - (epoch(finished) or 0.0) <= window_s:
            return True
    return False


@analyzer("logs")
def logs(v: View) -> list[Finding]:
    out = []
    for p in v.pods:
        name = p["metadata"]["name"]
        if not p["spec"].get("nodeName"):
            continue
        comp = v.deployment_of_pod(p)
        env = v.container_env(comp)
        restarted = _crashed_recently(p, v.cluster.now())
        since = v.cluster.now() - LOG_WINDOW_S
        try:
            lines = v.cluster.logs(name, v.namespace, tail=LOG_TAIL, since=since)
            if restarted:  # like `kubectl logs --previous`: why did the last instance die?
                lines = v.cluster.logs(name, v.namespace, tail=LOG_TAIL, since=since, previous=True) + lines
        except Exception:
            continue
        hits: Counter[tuple[str, str]] = Counter()
        samples: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
        for line in lines:
            for rx, signal, env_key in LOG_SIGNATURES:
                m = rx.search(line)
                if not m:
                    continue
                groups = m.groupdict()
                if signal == "ListenPort":
                    ports = {int(pp["containerPort"]) for c in p["spec"]["containers"] for pp in c.get("ports", [])}
                    if ports and int(groups["port"]) not in ports:
                        key = ("ListenPortMismatch", comp)
                        hits[key] += 1
                        samples[key] = (line, {"port": groups["port"], "container_ports": str(sorted(ports))})
                    continue
                target = comp
                if env_key and env.get(env_key):
                    target = v.service_component(env[env_key].rpartition(":")[0])
                if signal == "DownstreamError":
                    target = v.service_component(groups["callee"])
                key = (signal, target)
                hits[key] += 1
                samples[key] = (line, groups)
        for (signal, target), n in hits.items():
            line, groups = samples[(signal, target)]
            out.append(finding("logs", f"Pod/{name}", f"{name} logs ({n}x): {redact_text(line)[-220:]}", target, signal,
                               "critical" if signal != "DownstreamError" else "warning", [f"logs:{name}"],
                               reporter=comp, count=n, **{k: str(val) for k, val in groups.items() if val}))
    return out
