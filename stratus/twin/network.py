"""Cluster networking in the twin: DNS, Services and Endpoints, NetworkPolicy, network chaos.

``Network.dial`` answers what a client pod sees when it connects to ``host:port``: which fraction of
connections reach a serving process, what error the others get, and what latency the path adds.
Everything is derived from objects and process state; nothing is scripted per fault.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratus.cluster.selectors import label_selector_matches, matches

if TYPE_CHECKING:
    from stratus.twin.world import World


@dataclass
class DialResult:
    ok_fraction: float  # share of connections that reach a serving process
    error: str | None = None  # what the failing connections see: refused | timeout | nxdomain | reset
    message: str = ""
    extra_latency_ms: float = 0.0
    pods: list[str] = field(default_factory=list)  # pods that served (for trace attribution)
    loss: float = 0.0


def cluster_ip(name: str, namespace: str) -> str:
    h = sum((i + 1) * ord(c) for i, c in enumerate(f"{namespace}/{name}"))
    return str(ipaddress.IPv4Address("10.96.0.0") + 20 + h % 60000)


def parse_duration(text: str | None) -> float | None:
    """Chaos Mesh / Go durations: 200s, 5m, 1h, 1h30m. None or empty means forever."""
    if not text:
        return None
    total, num = 0.0, ""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if text[i:i + 2] == "ms" else ch
        if unit not in units or not num:
            raise ValueError(f"invalid duration {text!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        total += float(num)
    return total


class Network:
    def __init__(self, world: "World") -> None:
        self.w = world

    # --- chaos ------------------------------------------------------------------------------
    def chaos_on_pod(self, pod: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        """Active chaos objects of ``kind`` whose selector picks this pod."""
        out = []
        for ch in self.w.store.list(kind):
            if not self.chaos_active(ch):
                continue
            sel = ch.get("spec", {}).get("selector", {})
            namespaces = sel.get("namespaces") or [ch["metadata"].get("namespace")]
            if pod["metadata"].get("namespace") not in namespaces:
                continue
            if matches(pod["metadata"].get("labels"), sel.get("labelSelectors")):
                out.append(ch)
        return out

    def chaos_active(self, ch: dict[str, Any]) -> bool:
        started = self.w.chaos_started.setdefault(ch["metadata"]["uid"], self.w.clock.now)
        dur = parse_duration(ch.get("spec", {}).get("duration"))
        return dur is None or self.w.clock.now < started + dur

    # --- policy -----------------------------------------------------------------------------
    def ingress_allowed(self, src: dict[str, Any] | None, dst: dict[str, Any], port: int) -> bool:
        ns = dst["metadata"].get("namespace")
        selecting = [p for p in self.w.store.list("NetworkPolicy", ns)
                     if "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])
                     and label_selector_matches(dst["metadata"].get("labels"), p["spec"].get("podSelector"))]
        if not selecting:
            return True
        for pol in selecting:
            for rule in pol["spec"].get("ingress") or []:
                ports = rule.get("ports")
                if ports and not any(int(p.get("port", port)) == port for p in ports):
                    continue
                peers = rule.get("from")
                if not peers:
                    return True
                for peer in peers:
                    if "podSelector" in peer and src is not None and label_selector_matches(
                            src["metadata"].get("labels"), peer["podSelector"]):
                        return True
                    if "namespaceSelector" in peer and "podSelector" not in peer:
                        return True
        return False

    # --- dialing ----------------------------------------------------------------------------
    def dial(self, src: dict[str, Any] | None, address: str | None, namespace: str) -> DialResult:
        if not address or ":" not in address:
            return DialResult(0.0, "nxdomain", f"invalid address {address!r}: missing port")
        host, _, port_s = address.rpartition(":")
        try:
            port = int(port_s)
        except ValueError:
            return DialResult(0.0, "nxdomain", f"dial tcp: address {address}: invalid port")
        name = host.split(".")[0]
        svc_ns = host.split(".")[1] if host.count(".") >= 1 else namespace
        try:
            svc = self.w.store.get("Service", name, svc_ns)
        except Exception:
            return DialResult(0.0, "nxdomain", f"dial tcp: lookup {host} on 10.96.0.10:53: no such host")
        ip = cluster_ip(name, svc_ns)
        sport = next((p for p in svc["spec"].get("ports", []) if int(p["port"]) == port), None)
        if sport is None:
            return DialResult(0.0, "timeout", f"dial tcp {ip}:{port}: i/o timeout")
        try:
            eps = self.w.store.get("Endpoints", name, svc_ns)
        except Exception:
            eps = {"subsets": []}
        targets: list[tuple[str, int]] = []
        for subset in eps.get("subsets") or []:
            port_no = next((int(p["port"]) for p in subset.get("ports", [])
                            if p.get("name") == sport.get("name")), None)
            if port_no is None:
                continue
            for addr in subset.get("addresses") or []:
                targets.append((addr.get("targetRef", {}).get("name", ""), port_no))
        if not targets:
            return DialResult(0.0, "refused", f"dial tcp {ip}:{port}: connect: connection refused")
        good, delay, loss, served, blocked = 0.0, 0.0, 0.0, [], 0
        refused_msg = ""
        for pod_name, tport in targets:
            pod = self.w.store.get("Pod", pod_name, svc_ns) if self.w.store.exists("Pod", pod_name, svc_ns) \
                else None
            if pod is None:
                continue
            pod_ip = pod.get("status", {}).get("podIP", "10.244.0.1")
            if not self.ingress_allowed(src, pod, tport):
                blocked += 1
                continue
            if not self.w.kubelet.listening(pod, tport):
                refused_msg = f"dial tcp {pod_ip}:{tport}: connect: connection refused"
                continue
            d, lo = 0.0, 0.0
            for ch in self.chaos_on_pod(pod, "NetworkChaos"):
                spec = ch.get("spec", {})
                action = spec.get("action", "delay")
                if action == "delay":
                    d += (parse_duration(spec.get("delay", {}).get("latency", "0s")) or 0.0) * 1000.0
                elif action in ("loss", "partition"):
                    pct = float(str(spec.get("loss", {}).get("loss", "100")).rstrip("%")) / 100.0
                    lo = max(lo, 1.0 if action == "partition" else pct)
            good += 1.0 - lo
            loss += lo
            delay += d
            served.append(pod_name)
        n = len(targets)
        if not served:
            if blocked:
                return DialResult(0.0, "timeout", f"dial tcp {ip}:{port}: i/o timeout")
            return DialResult(0.0, "refused", refused_msg or f"dial tcp {ip}:{port}: connect: connection refused")
        res = DialResult(good / n, None, "", delay / max(1, len(served)), served, loss / n)
        if res.ok_fraction < 1.0:
            if blocked or res.loss > 0:
                res.error, res.message = "timeout", f"dial tcp {ip}:{port}: i/o timeout"
            else:
                res.error, res.message = "refused", refused_msg
        return res
