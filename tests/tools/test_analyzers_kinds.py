"""The k8sgpt-coverage analyzers on twin manifests: StatefulSets, DaemonSets, ReplicaSets, Jobs and
CronJobs, Ingresses, PVCs, Nodes, HPAs, PDBs, EndpointSlices and NetworkPolicies that select nothing."""

from __future__ import annotations

import copy
from typing import Any

from twin_edit import add, edit, run, signals, twin


def test_statefulset_and_daemonset_readiness_and_governing_service() -> None:
    c = twin()
    add(c, "StatefulSet", "cache", spec={"replicas": 3, "serviceName": "cache-headless", "template": {}},
        status={"readyReplicas": 1})
    add(c, "DaemonSet", "agent", spec={"template": {}},
        status={"desiredNumberScheduled": 3, "numberReady": 3, "numberMisscheduled": 1})
    found = run(c, "workloads")
    assert signals(found) == [("DaemonSetMisscheduled", "agent"), ("StatefulSetNotReady", "cache"),
                              ("StatefulSetServiceMissing", "cache")]


def test_a_replicaset_that_cannot_create_pods_is_charged_to_its_deployment() -> None:
    c = twin()
    rs = next(r for r in c.list("ReplicaSet", c.namespace) if r["metadata"]["name"].startswith("geo-"))
    edit(c, "ReplicaSet", rs["metadata"]["name"], lambda r: r.setdefault("status", {}).update(conditions=[
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
         "message": 'pods "geo-x" is forbidden: exceeded quota: compute'}]))
    found = run(c, "workloads")
    assert signals(found) == [("ReplicaSetCreateFailed", "geo")] and "exceeded quota" in found[0].summary


def test_failed_and_suspended_jobs() -> None:
    c = twin()
    add(c, "CronJob", "nightly", spec={"suspend": True, "jobTemplate": {}})
    add(c, "Job", "nightly-1", metadata={"ownerReferences": [{"kind": "CronJob", "name": "nightly"}]}, spec={},
        status={"failed": 6, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                             "message": "Job has reached the specified backoff limit"}]})
    add(c, "CronJob", "hourly", spec={"schedule": "61 * * * *", "startingDeadlineSeconds": -5, "jobTemplate": {}})
    add(c, "CronJob", "weekly", spec={"schedule": "CRON_TZ=UTC 0 3 * * MON-FRI", "jobTemplate": {}})
    assert signals(run(c, "jobs")) == [("CronJobBadSchedule", "hourly"), ("CronJobNegativeDeadline", "hourly"),
                                       ("CronJobSuspended", "nightly"), ("JobFailed", "nightly")]


def test_ingress_backends_must_name_an_existing_service_and_port() -> None:
    c = twin()
    add(c, "Ingress", "web", spec={"rules": [{"http": {"paths": [
        {"path": "/", "backend": {"service": {"name": "frontend", "port": {"number": 5000}}}},
        {"path": "/geo", "backend": {"service": {"name": "frontend", "port": {"number": 80}}}},
        {"path": "/old", "backend": {"service": {"name": "gone", "port": {"name": "http"}}}}]}}]})
    found = run(c, "ingress")
    assert signals(found) == [("IngressPortMissing", "frontend"), ("IngressServiceMissing", "gone")]


def test_pending_claims_carry_the_provisioners_reason() -> None:
    c = twin()
    pvc = add(c, "PersistentVolumeClaim", "data", spec={"storageClassName": "fast"}, status={"phase": "Pending"})
    c.world.store.event(pvc, "Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "fast" not found',
                        "persistentvolume-controller")
    found = run(c, "storage")
    # no StorageClass is listed here, so the missing class shows through the claim's event alone
    assert signals(found) == [("ClaimPending", "data")] and '"fast" not found' in found[0].summary
    c.world.store.create({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"}})
    assert signals(run(c, "storage")) == [("ClaimPending", "data"), ("StorageClassMissing", "data")]


def test_node_conditions_cordons_and_untolerated_taints() -> None:
    c = twin()

    def sick(n: dict[str, Any]) -> None:
        n["spec"]["unschedulable"] = True
        n["spec"]["taints"] = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                               {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
        n.setdefault("status", {})["conditions"] = [{"type": "Ready", "status": "True"},
                                                     {"type": "MemoryPressure", "status": "True", "message": "low"}]
    node = copy.deepcopy(c.world.store.get("Node", "kind-worker2"))
    sick(node)
    c.world.store.update(node)
    assert signals(run(c, "nodes")) == [("NodeCordoned", "kind-worker2"), ("NodeMemoryPressure", "kind-worker2"),
                                        ("NodeTaintUntolerated", "kind-worker2")]


def test_hpa_target_missing_and_at_max() -> None:
    c = twin()
    add(c, "HorizontalPodAutoscaler", "geo", spec={"scaleTargetRef": {"kind": "Deployment", "name": "geo"},
                                                  "maxReplicas": 3}, status={"currentReplicas": 3, "desiredReplicas": 5})
    add(c, "HorizontalPodAutoscaler", "old", spec={"scaleTargetRef": {"kind": "Deployment", "name": "geo-v1"},
                                                  "maxReplicas": 3})
    assert signals(run(c, "autoscaling")) == [("HPAAtMaxReplicas", "geo"), ("HPATargetMissing", "geo-v1")]
    edit(c, "Deployment", "geo", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(resources={}))
    assert ("HPATargetNoRequests", "geo") in signals(run(c, "autoscaling"))


def test_pdbs_that_select_nothing_or_block_every_disruption() -> None:
    c = twin()
    add(c, "PodDisruptionBudget", "strict", spec={"selector": {"matchLabels": {"io.kompose.service": "geo"}},
                                                  "maxUnavailable": 0})
    add(c, "PodDisruptionBudget", "stale", spec={"selector": {"matchLabels": {"app": "nothing"}}, "minAvailable": 1})
    add(c, "PodDisruptionBudget", "fine", spec={"selector": {"matchExpressions": [
        {"key": "io.kompose.service", "operator": "In", "values": ["rate"]}]}, "minAvailable": "50%"})
    assert signals(run(c, "disruption")) == [("PDBBlocksDisruption", "geo"), ("PDBSelectsNothing", None)]


def test_endpoint_slices_with_no_ready_endpoint() -> None:
    c = twin()
    sl = next(s for s in c.list("EndpointSlice", c.namespace)
              if s["metadata"].get("labels", {}).get("kubernetes.io/service-name") == "profile")
    edit(c, "EndpointSlice", sl["metadata"]["name"], lambda s: [e.setdefault("conditions", {}).update(ready=False)
                                                                 for e in s.get("endpoints") or []])
    assert signals(run(c, "endpoint_slices")) == [("SliceEndpointsNotReady", "profile")]


def test_a_network_policy_that_selects_no_pod_is_informational() -> None:
    c = twin()
    add(c, "NetworkPolicy", "old-rule", spec={"podSelector": {"matchLabels": {"app": "retired"}},
                                              "policyTypes": ["Ingress"]})
    found = run(c, "policies")
    assert [(f.signal, f.severity) for f in found] == [("PolicySelectsNoPods", "info")]
