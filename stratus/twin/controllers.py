"""Controllers of the twin: Deployment -> ReplicaSet -> Pod, scheduler, endpoints, garbage collection,
and the ControllerRevision history of StatefulSets and DaemonSets.

They follow the real controllers' rules where symptoms depend on them: rolling updates keep old pods
until new ones are available (maxSurge/maxUnavailable), ReplicaSets carry revisions so ``rollout undo``
works, the scheduler honours nodeSelector, taints, cordons and requests, and Endpoints list Ready
pods on the Service's targetPort (others under notReadyAddresses, unless the Service publishes them).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import uuid
from typing import TYPE_CHECKING, Any

from stratus.cluster.rollback import REVISION_KINDS, next_revision, revision_data
from stratus.cluster.selectors import label_selector_matches
from stratus.twin.admission import admit, affinity_fits, bind_claims, quota_status, volume_unfit
from stratus.twin.runtime import parse_quantity
from stratus.twin.store import rfc3339

if TYPE_CHECKING:
    from stratus.twin.world import World

REVISION = "deployment.kubernetes.io/revision"


def template_hash(template: dict[str, Any]) -> str:
    raw = json.dumps(template, sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:10]


def _pct(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        x = total * float(value[:-1]) / 100.0
        return math.ceil(x) if round_up else math.floor(x)
    return int(value)


NOT_HELPFUL = "Preemption is not helpful for scheduling"


def _histogram(reasons: dict[str, int]) -> str:
    """``"2 Insufficient cpu, 1 node(s) ..."``: counts and reasons sorted as text, as the scheduler prints them."""
    return ", ".join(sorted(f"{c} {r}" for r, c in reasons.items()))


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(r.get("uid") == owner["metadata"]["uid"] for r in obj["metadata"].get("ownerReferences", []))


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner.get("apiVersion", "v1"), "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


class Controllers:
    def __init__(self, world: "World") -> None:
        self.w = world
        self._owner_index: dict[str, tuple[int, dict[str, list[dict[str, Any]]]]] = {}
        self._hashes: dict[tuple[str, int], str] = {}

    def _children(self, kind: str, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """Objects of ``kind`` controlled by ``owner``; indexed once per store version."""
        version = self.w.store.version
        cached = self._owner_index.get(kind)
        if cached is None or cached[0] != version:
            index: dict[str, list[dict[str, Any]]] = {}
            for obj in self.w.store.list(kind):
                for ref in obj["metadata"].get("ownerReferences") or ():
                    index.setdefault(ref.get("uid"), []).append(obj)
            cached = self._owner_index[kind] = (version, index)
        return list(cached[1].get(owner["metadata"]["uid"], ()))

    def template_hash(self, d: dict[str, Any]) -> str:
        """The pod-template hash of a Deployment, cached per (uid, generation)."""
        key = (d["metadata"]["uid"], d["metadata"].get("generation", 1))
        h = self._hashes.get(key)
        if h is None:
            if len(self._hashes) > 4096:
                self._hashes.clear()
            h = self._hashes[key] = template_hash(d["spec"]["template"])
        return h

    def sync(self) -> None:
        self.garbage_collect()
        bind_claims(self.w)
        for d in list(self.w.store.list("Deployment")):
            self.deployment(d)
        for kind in REVISION_KINDS:
            for obj in list(self.w.store.list(kind)):
                self.controller_revisions(obj)
        for rs in list(self.w.store.list("ReplicaSet")):
            self.replicaset(rs)
        self.schedule()

    def after_kubelet(self) -> None:
        for rs in self.w.store.list("ReplicaSet"):
            pods = self._pods_of(rs)
            ready = sum(1 for p in pods if pod_ready(p))
            rs["status"] = {"replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
                            "fullyLabeledReplicas": len(pods),
                            "observedGeneration": rs["metadata"].get("generation", 1)}
        for d in self.w.store.list("Deployment"):
            self._deployment_status(d)
        quota_status(self.w)
        self.endpoints()

    # --- deployments ------------------------------------------------------------------------
    def _rs_of(self, d: dict[str, Any]) -> list[dict[str, Any]]:
        return self._children("ReplicaSet", d)

    def _pods_of(self, rs: dict[str, Any]) -> list[dict[str, Any]]:
        return self._children("Pod", rs)

    def deployment(self, d: dict[str, Any]) -> None:
        store, ns = self.w.store, d["metadata"]["namespace"]
        spec = d["spec"]
        tmpl = spec["template"]
        h = self.template_hash(d)
        rss = self._rs_of(d)
        max_rev = max((int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in rss), default=0)
        current = next((rs for rs in rss if rs["metadata"]["labels"].get("pod-template-hash") == h), None)
        if current is None:
            labels = dict(tmpl.get("metadata", {}).get("labels", {}), **{"pod-template-hash": h})
            t = copy.deepcopy(tmpl)
            t.setdefault("metadata", {})["labels"] = labels
            current = store.create({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{d['metadata']['name']}-{h[:10]}", "namespace": ns, "labels": labels,
                             "annotations": {REVISION: str(max_rev + 1)}, "ownerReferences": [owner_ref(d)]},
                "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": t},
            })
            # no event here: the scale-up below reports "from 0 to N" once, as the real controller does
            self.w.rollout_started[d["metadata"]["uid"]] = self.w.clock.now
        elif int(current["metadata"]["annotations"].get(REVISION, "0")) < max_rev:
            current["metadata"]["annotations"][REVISION] = str(max_rev + 1)  # rollback re-uses the old RS
            self.w.rollout_started[d["metadata"]["uid"]] = self.w.clock.now
        desired = int(spec.get("replicas", 1))
        old = [rs for rs in rss if rs is not current]
        strategy = spec.get("strategy", {}) or {}
        if strategy.get("type") == "Recreate":
            alive = sum(len(self._pods_of(rs)) for rs in old)
            for rs in old:
                self._scale(d, rs, 0)
            self._scale(d, current, desired if alive == 0 else 0)
        else:
            ru = strategy.get("rollingUpdate") or {}
            max_surge = _pct(ru.get("maxSurge", "25%"), desired, True)
            max_unavail = _pct(ru.get("maxUnavailable", "25%"), desired, False)
            if max_surge == 0 and max_unavail == 0:
                max_unavail = 1
            new_avail = current.get("status", {}).get("availableReplicas", 0)
            old_total = sum(rs["spec"]["replicas"] for rs in old)
            self._scale(d, current, min(desired, max(current["spec"]["replicas"], desired + max_surge - old_total)))
            allowed_old = max(0, desired - max_unavail - new_avail)
            for rs in sorted(old, key=lambda r: int(r["metadata"]["annotations"].get(REVISION, "0"))):
                keep = min(rs["spec"]["replicas"], allowed_old)
                allowed_old -= keep
                self._scale(d, rs, keep)
        limit = int(spec.get("revisionHistoryLimit", 10))
        stale = [rs for rs in old if rs["spec"]["replicas"] == 0 and not self._pods_of(rs)]
        stale.sort(key=lambda r: int(r["metadata"]["annotations"].get(REVISION, "0")))
        for rs in stale[: max(0, len(stale) - limit)]:
            store.delete("ReplicaSet", rs["metadata"]["name"], ns)

    def _scale(self, d: dict[str, Any], rs: dict[str, Any], n: int) -> None:
        cur = rs["spec"]["replicas"]
        if cur == n:
            return
        rs["spec"]["replicas"] = n
        verb = "up" if n > cur else "down"
        self.w.store.event(d, "Normal", "ScalingReplicaSet",
                           f"Scaled {verb} replica set {rs['metadata']['name']} from {cur} to {n}",
                           "deployment-controller")

    def _deployment_status(self, d: dict[str, Any]) -> None:
        rss = self._rs_of(d)
        h = self.template_hash(d)
        current = next((rs for rs in rss if rs["metadata"]["labels"].get("pod-template-hash") == h), None)
        total = sum(rs.get("status", {}).get("replicas", 0) for rs in rss)
        avail = sum(rs.get("status", {}).get("availableReplicas", 0) for rs in rss)
        updated = current.get("status", {}).get("replicas", 0) if current else 0
        updated_avail = current.get("status", {}).get("availableReplicas", 0) if current else 0
        desired = int(d["spec"].get("replicas", 1))
        conds = [{"type": "Available", "status": "True" if avail >= desired - _pct(
            (d["spec"].get("strategy", {}).get("rollingUpdate") or {}).get("maxUnavailable", "25%"), desired, False)
            else "False",
                  "reason": "MinimumReplicasAvailable" if avail >= desired else "MinimumReplicasUnavailable",
                  "message": "Deployment has minimum availability." if avail >= desired
                  else "Deployment does not have minimum availability."}]
        started = self.w.rollout_started.get(d["metadata"]["uid"], 0.0)
        deadline = float(d["spec"].get("progressDeadlineSeconds", 600))
        if updated_avail >= desired:
            conds.append({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                          "message": f'ReplicaSet "{current["metadata"]["name"] if current else ""}" '
                                     f"has successfully progressed."})
        elif self.w.clock.now - started > deadline:
            conds.append({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                          "message": f'ReplicaSet "{current["metadata"]["name"] if current else ""}" '
                                     f"has timed out progressing."})
        else:
            conds.append({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                          "message": f'ReplicaSet "{current["metadata"]["name"] if current else ""}" '
                                     f"is progressing."})
        d["status"] = {"observedGeneration": d["metadata"].get("generation", 1), "replicas": total,
                       "updatedReplicas": updated, "readyReplicas": avail, "availableReplicas": avail,
                       "unavailableReplicas": max(0, desired - avail), "conditions": conds}

    # --- statefulsets and daemonsets: their rollout history --------------------------------
    def controller_revisions(self, obj: dict[str, Any]) -> None:
        """Record the live pod template as a ControllerRevision, as the StatefulSet and DaemonSet
        controllers do (the twin runs no pods for them: their history is what ``rollout undo`` needs)."""
        store, meta = self.w.store, obj["metadata"]
        revisions = self._children("ControllerRevision", obj)
        same, number = next_revision(obj, revisions)
        if same is None:
            h = template_hash(obj["spec"]["template"])
            labels = dict(obj["spec"]["template"].get("metadata", {}).get("labels") or {})
            labels["controller-revision-hash"] = h
            same = store.create({"apiVersion": "apps/v1", "kind": "ControllerRevision",
                                 "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
                                              "labels": labels, "ownerReferences": [owner_ref(obj)]},
                                 "data": revision_data(obj), "revision": number})
            revisions.append(same)
        elif same["revision"] != number:
            same["revision"] = number
            store.update(same)
        status = obj.setdefault("status", {})
        status["updateRevision"] = status["currentRevision"] = same["metadata"]["name"]
        status["observedGeneration"] = meta.get("generation", 1)
        limit = int(obj["spec"].get("revisionHistoryLimit", 10))
        old = sorted((r for r in revisions if r is not same), key=lambda r: r["revision"])
        for r in old[: max(0, len(old) - limit)]:
            store.delete("ControllerRevision", r["metadata"]["name"], meta["namespace"])

    # --- replicasets ------------------------------------------------------------------------
    def replicaset(self, rs: dict[str, Any]) -> None:
        store, ns = self.w.store, rs["metadata"]["namespace"]
        pods = self._pods_of(rs)
        want = int(rs["spec"]["replicas"])
        if len(pods) > want:
            pods.sort(key=lambda p: (pod_ready(p), p["metadata"]["creationTimestamp"]))
            for p in pods[: len(pods) - want]:
                self.w.delete_pod(p)
                store.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}",
                            "replicaset-controller")
        for _ in range(want - len(pods)):
            tmpl = copy.deepcopy(rs["spec"]["template"])
            pod = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": rs["metadata"]["name"] + "-", "namespace": ns,
                             "labels": tmpl.get("metadata", {}).get("labels", {}),
                             "annotations": tmpl.get("metadata", {}).get("annotations", {}),
                             "ownerReferences": [owner_ref(rs)]},
                "spec": tmpl["spec"],
                "status": {"phase": "Pending", "conditions": [], "qosClass": "Burstable"},
            }
            refused = admit(self.w, pod)
            if refused:
                key = f"rs/{rs['metadata']['uid']}"
                if self.w.clock.now - self.w.sched_last_event.get(key, -1e9) >= 60.0:
                    self.w.sched_last_event[key] = self.w.clock.now
                    store.event(rs, "Warning", "FailedCreate", f"Error creating: {refused}", "replicaset-controller")
                break
            pod = store.create(pod)
            store.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                        "replicaset-controller")

    # --- scheduler --------------------------------------------------------------------------
    def schedule(self) -> None:
        store = self.w.store
        nodes = store.list("Node")
        for pod in store.list("Pod"):
            if pod["spec"].get("nodeName"):
                continue
            reasons: dict[str, int] = {}
            preempt: dict[str, int] = {}
            fits = []
            vol = volume_unfit(self.w, pod)
            for node in [] if vol else nodes:
                why = self._unfit(pod, node)
                if why is None:
                    fits.append(node)
                    continue
                reasons[why[0]] = reasons.get(why[0], 0) + 1
                # the twin has no pod priorities, so preemption never finds a victim where it could help
                hint = "No preemption victims found for incoming pod" if why[1] else NOT_HELPFUL
                preempt[hint] = preempt.get(hint, 0) + 1
            if fits:
                node = min(fits, key=lambda n: (self._requested(n, "memory"), n["metadata"]["name"]))
                pod["spec"]["nodeName"] = node["metadata"]["name"]
                pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
                store.event(pod, "Normal", "Scheduled",
                            f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} "
                            f"to {node['metadata']['name']}", "default-scheduler")
                continue
            n = len(nodes)
            if vol:
                reasons, preempt = {}, {NOT_HELPFUL: n}
            msg = (f"0/{n} nodes are available: {vol or _histogram(reasons)}. preemption: 0/{n} nodes are "
                   f"available: {_histogram(preempt)}.")
            pod["status"]["phase"] = "Pending"
            pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": msg}]
            last = self.w.sched_last_event.get(pod["metadata"]["uid"], -1e9)
            if self.w.clock.now - last >= 60.0:
                self.w.sched_last_event[pod["metadata"]["uid"]] = self.w.clock.now
                store.event(pod, "Warning", "FailedScheduling", msg, "default-scheduler")

    def _requested(self, node: dict[str, Any], resource: str) -> float:
        total = 0.0
        for p in self.w.store.list("Pod"):
            if p["spec"].get("nodeName") != node["metadata"]["name"]:
                continue
            for c in p["spec"]["containers"]:
                total += parse_quantity((c.get("resources") or {}).get("requests", {}).get(resource)) or 0.0
        return total

    def _unfit(self, pod: dict[str, Any], node: dict[str, Any]) -> tuple[str, bool] | None:
        """Why ``node`` cannot take ``pod`` (the first failing filter, in kube-scheduler's plugin order:
        NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit) and whether evicting pods
        could make room; None when it fits."""
        if node["spec"].get("unschedulable"):
            return "node(s) were unschedulable", False
        tolerations = pod["spec"].get("tolerations") or []
        for taint in node["spec"].get("taints") or []:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            if not any((t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")))
                       or (t.get("key") == taint.get("key") and t.get("value") == taint.get("value"))
                       for t in tolerations):
                return "node(s) had untolerated taint(s)", False
        labels = node["metadata"].get("labels", {})
        sel = pod["spec"].get("nodeSelector") or {}
        if any(labels.get(k) != v for k, v in sel.items()) or not affinity_fits(pod, node):
            return "node(s) didn't match Pod's node affinity/selector", False
        for res in ("cpu", "memory"):
            want = sum(parse_quantity((c.get("resources") or {}).get("requests", {}).get(res)) or 0.0
                       for c in pod["spec"]["containers"])
            cap = parse_quantity(node["status"]["allocatable"].get(res)) or 0.0
            if want and self._requested(node, res) + want > cap:
                return f"Insufficient {res}", want <= cap  # beyond the allocatable, no eviction helps
        return None

    # --- endpoints --------------------------------------------------------------------------
    def endpoints(self) -> None:
        store = self.w.store
        by_label: dict[tuple[str | None, str, str], list[dict[str, Any]]] = {}
        for p in store.list("Pod"):
            if p["spec"].get("nodeName"):
                for k, val in (p["metadata"].get("labels") or {}).items():
                    by_label.setdefault((p["metadata"].get("namespace"), k, val), []).append(p)
        for svc in store.list("Service"):
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            sel = svc["spec"].get("selector")
            pods = []
            if sel:
                k0, v0 = next(iter(sel.items()))
                pods = [p for p in by_label.get((ns, k0, v0), ())
                        if label_selector_matches(p["metadata"].get("labels"), {"matchLabels": sel})]
            subsets = []
            pods = [p for p in pods if (p.get("status") or {}).get("podIP")]  # no IP yet: nothing to route to
            publish_all = bool(svc["spec"].get("publishNotReadyAddresses"))
            ready = [p for p in pods if publish_all or pod_ready(p)]
            not_ready = [p for p in pods if not publish_all and not pod_ready(p)]
            ports = []
            for sp in svc["spec"].get("ports", []):
                tp = sp.get("targetPort", sp["port"])
                if isinstance(tp, str) and not tp.isdigit():
                    tp = next((cp["containerPort"] for p in pods for c in p["spec"]["containers"]
                               for cp in c.get("ports", []) if cp.get("name") == tp), None)
                    if tp is None:
                        continue
                ports.append({"name": sp.get("name", ""), "port": int(tp), "protocol": sp.get("protocol", "TCP")})

            def addr(p: dict[str, Any], ns: str = ns) -> dict[str, Any]:
                return {"ip": p.get("status", {}).get("podIP", ""), "nodeName": p["spec"].get("nodeName"),
                        "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
                                      "uid": p["metadata"]["uid"]}}
            if pods and ports:
                subset: dict[str, Any] = {"ports": ports}
                if ready:
                    subset["addresses"] = [addr(p) for p in ready]
                if not_ready:
                    subset["notReadyAddresses"] = [addr(p) for p in not_ready]
                subsets.append(subset)
            ep: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints",
                  "metadata": {"name": name, "namespace": ns, "labels": dict(svc["metadata"].get("labels", {}))},
                  "subsets": subsets}
            if sel:  # a Service without a selector has its slices written by whoever manages it
                self._endpoint_slice(svc, pods, ports, publish_all)
            if store.exists("Endpoints", name, ns):
                old = store.get("Endpoints", name, ns)
                if old.get("subsets") != subsets:
                    ep["metadata"] = old["metadata"]
                    store.update(ep)
            else:
                store.create(ep)
        for ep in list(store.list("Endpoints")):
            if not store.exists("Service", ep["metadata"]["name"], ep["metadata"]["namespace"]):
                store.delete("Endpoints", ep["metadata"]["name"], ep["metadata"]["namespace"])

    def _endpoint_slice(self, svc: dict[str, Any], pods: list[dict[str, Any]], ports: list[dict[str, Any]],
                        publish_all: bool) -> None:
        """The Service's EndpointSlice, as the EndpointSlice controller writes it. Unlike Endpoints, a pod
        none of whose ports resolve is still listed (with no ports), and readiness is a per-endpoint
        condition. The slice's name and uid derive from the Service's, so the world's rng is not drawn."""
        store, meta = self.w.store, svc["metadata"]
        endpoints = [{"addresses": [p["status"]["podIP"]],
                      "conditions": {"ready": publish_all or pod_ready(p), "serving": publish_all or pod_ready(p),
                                     "terminating": False},
                      "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": p["metadata"]["name"],
                                    "uid": p["metadata"]["uid"]},
                      "nodeName": p["spec"].get("nodeName")} for p in pods]
        # ports are resolved per pod: with no pods there are none, even for a numeric targetPort
        body: dict[str, Any] = {"endpoints": endpoints or None, "ports": (ports or None) if endpoints else None}
        name = f"{meta['name']}-{template_hash(meta['uid'])[:5]}"
        if store.exists("EndpointSlice", name, meta["namespace"]):
            old = store.get("EndpointSlice", name, meta["namespace"])
            if any(old.get(k) != v for k, v in body.items()):
                store.update({**old, **body})
            return
        labels = {**(meta.get("labels") or {}), "kubernetes.io/service-name": meta["name"],
                  "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
        store.create({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4", **body,
                      "metadata": {"name": name, "generateName": meta["name"] + "-", "namespace": meta["namespace"],
                                   "uid": str(uuid.uuid5(uuid.NAMESPACE_OID, meta["uid"] + "/endpointslice")),
                                   "labels": labels, "ownerReferences": [owner_ref(svc)]}})

    # --- garbage collection -----------------------------------------------------------------
    def garbage_collect(self) -> None:
        store = self.w.store
        owners = ("Deployment", "ReplicaSet", "Service", *REVISION_KINDS)
        uids = {o["metadata"]["uid"] for k in owners for o in store.list(k)}
        for kind in ("ReplicaSet", "ControllerRevision", "EndpointSlice", "Pod"):
            for obj in list(store.list(kind)):
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and not any(r["uid"] in uids for r in refs):
                    if kind == "Pod":
                        self.w.delete_pod(obj)
                    else:
                        store.delete(kind, obj["metadata"]["name"], obj["metadata"]["namespace"])


__all__ = ["Controllers", "template_hash", "pod_ready", "rfc3339", "REVISION"]
