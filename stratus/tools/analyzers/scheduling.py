"""Scheduling analyzer: why pods stay Pending, from the scheduler's own message.

The FailedScheduling event (or the pod's PodScheduled=False condition) lists, per group of nodes, why
none fits. Each part becomes one cause (insufficient resources, untolerated taint, node selector or
affinity mismatch, volume binding, ...; patterns in ``data/scheduling.yaml``), with the node count and
the detail (which resource, which taint, which claim), one finding per workload and cause.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from stratus.state import Finding
from stratus.tools.analyzers.match import workload_of_pod
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (p["cause"], re.compile(p["regex"]))
    for p in yaml.safe_load((Path(__file__).parent / "data" / "scheduling.yaml").read_text())["patterns"]]
_PART = re.compile(r"(?:^|,\s*)(\d+)\s+([^,]+?)(?=,\s*\d+\s|$)")


def parse_message(message: str) -> list[dict[str, Any]]:
    """Causes in a scheduler message: ``[{"cause", "nodes", "text", **groups}]``, in message order."""
    body = message.split(":", 1)[1] if "nodes are available" in message else message
    body = body.split("preemption:", 1)[0].strip().rstrip(".")
    out: list[dict[str, Any]] = []
    parts = [(int(n), text.strip()) for n, text in _PART.findall(body)] or [(0, body)]
    for nodes, text in parts:
        for cause, rx in PATTERNS:
            m = rx.search(text)
            if m:
                out.append({"cause": cause, "nodes": nodes, "text": text[:160],
                            **{k: val for k, val in m.groupdict().items() if val}})
                break
    return out


def _messages(v: View) -> list[tuple[dict[str, Any], str, str]]:
    """``(pod, message, evidence)`` for every Pending pod the scheduler explained."""
    pods = {p["metadata"]["name"]: p for p in v.pods}
    out: list[tuple[dict[str, Any], str, str]] = []
    seen: set[str] = set()
    for e in reversed(v.events):  # newest first: the latest explanation wins
        obj = e.get("involvedObject") or {}
        if e.get("reason") == "FailedScheduling" and obj.get("name") in pods and obj["name"] not in seen:
            seen.add(obj["name"])
            out.append((pods[obj["name"]], e.get("message", ""), f"event:{e['metadata']['name']}"))
    for name, p in pods.items():
        if name in seen:
            continue
        for cond in (p.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and cond.get("message"):
                out.append((p, cond["message"], f"pod:{name}:conditions"))
    return out


@analyzer("scheduling")
def scheduling(v: View) -> list[Finding]:
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for pod, message, evidence in _messages(v):
        owner = workload_of_pod(v, pod)
        for fact in parse_message(message):
            g = grouped.setdefault((owner, fact["cause"]), {"pods": [], "evidence": [], "fact": fact})
            g["pods"].append(pod["metadata"]["name"])
            g["evidence"].append(evidence)
    out = []
    for (owner, cause), g in sorted(grouped.items()):
        fact = g["fact"]
        detail = fact.get("resource") or fact.get("taint") or fact.get("claim") or fact["text"]
        out.append(finding("scheduling", f"Pod/{g['pods'][0]}", f"{len(g['pods'])} pod(s) of {owner} cannot be "
                                                                f"scheduled: {cause} ({detail}) on {fact['nodes']} "
                                                                f"node(s)", owner, f"Scheduling{cause}", "warning",
                           sorted(set(g["evidence"]))[:6], pods=g["pods"][:10], **fact))
    return out
