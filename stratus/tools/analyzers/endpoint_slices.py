"""EndpointSlice analyzer: Services whose slices hold endpoints none of which is ready, with the
not-ready pods named. Read only when the backend serves EndpointSlices; otherwise silent."""

from __future__ import annotations

from collections import defaultdict

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View

SERVICE_LABEL = "kubernetes.io/service-name"


@analyzer("endpoint_slices")
def endpoint_slices(v: View) -> list[Finding]:
    ready: dict[str, int] = defaultdict(int)
    waiting: dict[str, list[str]] = defaultdict(list)
    for sl in v.objects("EndpointSlice"):
        svc = (sl["metadata"].get("labels") or {}).get(SERVICE_LABEL)
        if not svc:
            continue
        for ep in sl.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready", True):
                ready[svc] += 1
            else:
                waiting[svc].append((ep.get("targetRef") or {}).get("name") or ",".join(ep.get("addresses") or []))
    out = []
    for svc, names in sorted(waiting.items()):
        if ready[svc] == 0:
            out.append(finding("endpoint_slices", f"Service/{svc}", f"Service {svc}: all {len(names)} endpoint(s) "
                                                                   f"in its EndpointSlices are not ready "
                                                                   f"({', '.join(names[:5])})", v.service_component(svc),
                               "SliceEndpointsNotReady", "warning", [f"endpointslice:{svc}"], not_ready=names[:10]))
    return out
