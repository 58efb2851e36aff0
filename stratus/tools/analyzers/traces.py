"""Trace analyzer: the call graph of recent traces, flagging unreachable callees, callee errors and
slow network paths.
"""

from __future__ import annotations

from collections import defaultdict

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


@analyzer("traces")
def traces(v: View) -> list[Finding]:
    """Error and latency call graph from recent traces: edge caller->callee with error and delay share."""
    trs = v.cluster.traces(None, since=v.cluster.now() - 120, limit=60)
    edges: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0.0])
    for tr in trs:
        children = defaultdict(list)
        for s in tr["spans"]:
            children[s.get("parentSpanID")].append(s)
        for s in tr["spans"]:
            if s.get("kind") != "CLIENT":
                continue
            e = edges[(s["service"], s.get("peer", ""))]
            e[0] += 1
            server = next((c for c in children.get(s["spanID"], []) if c.get("kind") == "SERVER"), None)
            if s.get("status") == "ERROR":
                # the error is the callee's own when its children did not fail
                if server is None:
                    e[1] += 1  # never reached the callee
                elif not any(c.get("status") == "ERROR" for c in children.get(server["spanID"], [])):
                    e[3] += 1
            if server is not None:
                e[2] += max(0.0, s["duration_ms"] - server["duration_ms"])
                e[4] += server["duration_ms"]
    out = []
    for (caller, callee), (n, unreached, net_ms, own_err, server_ms) in edges.items():
        if not n:
            continue
        comp = v.service_component(callee)
        if unreached / n > 0.2:
            out.append(finding("traces", f"edge {caller}->{callee}", f"{unreached}/{n} calls {caller}->{callee} never "
                                                                    f"reached {callee}", comp, "CalleeUnreachable",
                               "critical", [f"traces:{caller}->{callee}"], caller=caller, share=unreached / n))
        if own_err / n > 0.2:
            out.append(finding("traces", f"edge {caller}->{callee}", f"{own_err}/{n} calls to {callee} failed inside "
                                                                    f"{callee} (its own calls succeeded)", comp,
                               "CalleeErrors", "warning", [f"traces:{caller}->{callee}"], caller=caller))
        if net_ms / n > 500:
            out.append(finding("traces", f"edge {caller}->{callee}", f"calls {caller}->{callee} spend {net_ms / n:.0f} ms "
                                                                    f"on the network path (server time "
                                                                    f"{server_ms / n:.0f} ms)", comp, "NetworkLatency",
                               "critical", [f"traces:{caller}->{callee}"], caller=caller, delay_ms=net_ms / n))
    return out
