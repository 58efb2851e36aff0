"""Workload analyzer for the controllers besides Deployments: ReplicaSets (failure conditions, e.g. a
quota refusing pods), StatefulSets (ready replicas, governing Service) and DaemonSets (nodes scheduled,
ready, misscheduled).
"""

from __future__ import annotations

from stratus.state import Finding
from stratus.tools.analyzers.registry import analyzer, finding
from stratus.tools.analyzers.view import View


def _replicasets(v: View) -> list[Finding]:
    out = []
    for rs in v.replicasets:
        name = rs["metadata"]["name"]
        owner = next((r["name"] for r in rs["metadata"].get("ownerReferences") or [] if r.get("kind") == "Deployment"),
                     name)
        for cond in (rs.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
                out.append(finding("workloads", f"ReplicaSet/{name}", f"ReplicaSet {name} cannot create pods: "
                                                                      f"{cond.get('reason')}: {cond.get('message', '')[:200]}",
                                   owner, "ReplicaSetCreateFailed", "warning", [f"replicaset:{name}:status.conditions"],
                                   reason=cond.get("reason"), message=cond.get("message", "")))
    return out


def _statefulsets(v: View) -> list[Finding]:
    out = []
    services = {s["metadata"]["name"] for s in v.services}
    for sts in v.objects("StatefulSet"):
        name, spec, st = sts["metadata"]["name"], sts.get("spec") or {}, sts.get("status") or {}
        ref = f"StatefulSet/{name}"
        desired, ready = int(spec.get("replicas", 1)), int(st.get("readyReplicas", 0))
        if ready < desired:
            out.append(finding("workloads", ref, f"StatefulSet {name}: {ready}/{desired} replicas ready", name,
                               "StatefulSetNotReady", "warning", [f"statefulset:{name}:status"], ready=ready,
                               desired=desired))
        svc = spec.get("serviceName")
        if svc and svc not in services and "Service" not in v.truncated:
            out.append(finding("workloads", ref, f"StatefulSet {name} names governing Service {svc}, which does "
                                                 f"not exist (its pods get no stable DNS names)", name,
                               "StatefulSetServiceMissing", "warning", [f"statefulset:{name}:spec.serviceName"],
                               service=svc))
    return out


def _daemonsets(v: View) -> list[Finding]:
    out = []
    for ds in v.objects("DaemonSet"):
        name, st = ds["metadata"]["name"], ds.get("status") or {}
        ref = f"DaemonSet/{name}"
        want, ready = int(st.get("desiredNumberScheduled", 0)), int(st.get("numberReady", 0))
        if ready < want:
            out.append(finding("workloads", ref, f"DaemonSet {name}: {ready}/{want} scheduled pods ready", name,
                               "DaemonSetNotReady", "warning", [f"daemonset:{name}:status"], ready=ready, desired=want))
        if int(st.get("numberMisscheduled", 0)):
            out.append(finding("workloads", ref, f"DaemonSet {name}: {st['numberMisscheduled']} pod(s) run on nodes "
                                                 f"they should not", name, "DaemonSetMisscheduled", "info",
                               [f"daemonset:{name}:status"], misscheduled=st["numberMisscheduled"]))
    return out


@analyzer("workloads")
def workloads(v: View) -> list[Finding]:
    return _replicasets(v) + _statefulsets(v) + _daemonsets(v)
