"""``TwinCluster``: the Cluster protocol served by the digital twin.

Agents see the twin exactly as they would see a real cluster: manifests, events, logs, PromQL, traces
and Alertmanager alerts. Writes go through the same ``mutate`` code as the production backend.
"""

from __future__ import annotations

import builtins
import copy
from datetime import UTC, datetime
from typing import Any

from stratus.cluster.actions import Action, ActionResult
from stratus.cluster.base import ClusterError, Conflict, NotFound, Ref, omitted_marker
from stratus.cluster.mutate import clean_manifest, mutate, previous_revision_template
from stratus.cluster.rollback import REVISION_KINDS, restored, skipped_rollback, undo_target
from stratus.twin.prom.query import evaluate, evaluate_range
from stratus.twin.world import World

LOCK_NAME = "stratus-tnr-lock"
DELETABLE = {"Pod", "NetworkPolicy", "PodChaos", "NetworkChaos", "Lease", "ResourceQuota", "ConfigMap",
             "Service", "Deployment", "LimitRange", "PersistentVolumeClaim"}


def _micro_time(t: float) -> str:
    """A Lease's ``MicroTime``, as the API server writes it."""
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.pop("_t", None)
    return out


class TwinCluster:
    """A Cluster backed by an in-process ``World``."""

    is_twin = True  # approval "auto" does not ask a human before changing a simulation

    def __init__(self, world: World | None = None, *, app: str = "hotel-reservation", seed: int = 0,
                 namespace: str | None = None, warm_up_s: float = 0.0) -> None:
        self.world = world or World(app, seed=seed, namespace=namespace)
        if warm_up_s:
            self.world.warm_up(warm_up_s)
        self.fail_after_applies: int | None = None  # test hook: simulate a crash mid-transaction

    @property
    def namespace(self) -> str:
        return self.world.namespace

    # --- reads ------------------------------------------------------------------------------
    def list(self, kind: str, namespace: str | None = None, selector: dict[str, str] | None = None,
             limit: int = 200) -> builtins.list[dict[str, Any]]:
        objs = self.world.store.list(kind, namespace, selector)
        out = [_public(o) for o in objs[:limit]]
        if len(objs) > limit:
            out.append({"kind": "Omitted", "message": omitted_marker(len(objs), limit, kind.lower() + "s")})
        return out

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return _public(self.world.store.get(kind, name, namespace))

    def events(self, namespace: str | None = None, since: float | None = None,
               limit: int = 200) -> builtins.list[dict[str, Any]]:
        evs = [_public(e) for e in self.world.store.events(namespace, since)]
        if len(evs) > limit:
            return [{"kind": "Omitted", "message": omitted_marker(len(evs), limit, "events")}] + evs[-limit:]
        return evs

    def logs(self, pod: str, namespace: str, container: str | None = None, tail: int = 200,
             since: float | None = None, previous: bool = False) -> builtins.list[str]:
        if not self.world.store.exists("Pod", pod, namespace):
            raise NotFound(f'pods "{pod}" not found in namespace {namespace}')
        lines = [line for t, line in self.world.logs.read(namespace, pod, container, previous)
                 if since is None or t >= since]
        if len(lines) > tail:
            return [omitted_marker(len(lines), tail, "lines")] + lines[-tail:]
        return lines

    def query(self, promql_expr: str, at: float | None = None) -> dict[str, Any]:
        return evaluate(self.world.tsdb, promql_expr, self.world.clock.now if at is None else at)

    def query_range(self, promql_expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        return evaluate_range(self.world.tsdb, promql_expr, start, end, step)

    def traces(self, service: str | None = None, since: float | None = None,
               limit: int = 50) -> builtins.list[dict[str, Any]]:
        out = []
        for tr in reversed(self.world.traffic.traces):
            if since is not None and tr["startTime"] < since:
                break
            if service is None or any(s["service"] == service or s.get("peer") == service for s in tr["spans"]):
                out.append(copy.deepcopy(tr))
                if len(out) >= limit:
                    break
        return out

    def alerts(self) -> builtins.list[dict[str, Any]]:
        return self.world.rules.alertmanager_alerts()

    def now(self) -> float:
        return self.world.clock.now

    def read_db(self, action: Action) -> dict[str, Any]:
        cmd = action.params.get("db_command") or {}
        pod = self._exec_target(action, action.namespace or self.namespace)
        comp = pod["metadata"]["labels"].get(self.world.app.label_key, "")
        if comp not in self.world.db or cmd.get("op") != "get_user":
            raise ClusterError(f"pod {pod['metadata']['name']} runs no database STRATUS can read "
                               f"with {cmd.get('op')!r}")
        user = self.world.db[comp]["users"].get(cmd.get("user", ""))
        who = {"user": cmd.get("user", ""), "db": cmd.get("user_db", "admin")}
        if user is None:
            return {**who, "absent": True}
        return {**who, "roles": [dict(r) for r in user["roles"]]}

    # --- writes -----------------------------------------------------------------------------
    def apply(self, action: Action, dry_run: bool = False) -> ActionResult:
        if self.fail_after_applies is not None and not dry_run:
            if self.fail_after_applies <= 0:
                raise RuntimeError("simulated crash of the STRATUS process during apply")
            self.fail_after_applies -= 1
        try:
            msg, changed = self._apply(action, dry_run)
            return ActionResult(ok=True, action=action.model_dump(), message=msg, dry_run=dry_run,
                                changed=changed)
        except (ClusterError, ValueError, KeyError) as exc:
            return ActionResult(ok=False, action=action.model_dump(), message=str(exc), dry_run=dry_run)

    def _apply(self, a: Action, dry_run: bool) -> tuple[str, bool]:
        store, ns = self.world.store, a.namespace or self.namespace
        suffix = " (server dry run)" if dry_run else ""
        if a.verb in ("apply", "create"):
            manifest = copy.deepcopy(a.params.get("manifest") or {})
            kind, meta = manifest.get("kind"), manifest.get("metadata", {})
            if not kind or not meta.get("name"):
                raise ClusterError("manifest needs kind and metadata.name")
            meta.setdefault("namespace", ns)
            exists = store.exists(kind, meta["name"], meta["namespace"])
            if a.verb == "create" and exists:
                raise ClusterError(f'{kind.lower()}s "{meta["name"]}" already exists')
            if not dry_run:
                self._put(manifest)
            verb = "configured" if exists else "created"
            return f"{kind.lower()}/{meta['name']} {verb}{suffix}", True
        if a.verb == "delete":
            if a.kind not in DELETABLE:
                raise ClusterError(f"deleting {a.kind} is not allowed by STRATUS")
            obj = store.get(a.kind, a.name, ns)
            if not dry_run:
                if a.kind == "Pod":
                    self.world.delete_pod(obj)
                else:
                    store.delete(a.kind, a.name, ns)
            return f'{a.kind.lower()} "{a.name}" deleted{suffix}', True
        if a.verb == "exec":
            pod = self._exec_target(a, ns)
            comp = pod["metadata"]["labels"].get(self.world.app.label_key, "")
            cmd = a.params.get("db_command") or {}
            if dry_run:
                if comp not in self.world.db:
                    raise ClusterError(f"pod {pod['metadata']['name']} runs no database STRATUS can administer")
                return f"would run {cmd.get('op')} on {comp}{suffix}", True
            return self.world.db_exec(comp, cmd), True
        if a.verb == "rollout_undo" and a.kind in REVISION_KINDS:
            return self._undo_to_controller_revision(a, ns, suffix, dry_run)
        if a.verb == "rollout_undo":
            d = store.get("Deployment", a.name, ns)
            tmpl = previous_revision_template(d, store.list("ReplicaSet", ns), a.params.get("to_revision"))
            if tmpl == d["spec"]["template"]:
                return f"deployment.apps/{a.name} {skipped_rollback(a.params.get('to_revision') or 0)}{suffix}", False
            new = copy.deepcopy(d)
            new["spec"]["template"] = tmpl
            if not dry_run:
                store.update(new)
            return f"deployment.apps/{a.name} rolled back{suffix}", True
        obj = store.get(a.kind, a.name, None if a.kind == "Node" else ns)
        new = mutate(obj, a, now=self.world.clock.now)
        self._validate(new)
        changed = clean_manifest(new) != clean_manifest(obj)  # a ConfigMap's change is in ``data``, not spec
        if not dry_run and changed:
            store.update(new)
        return f"{a.kind.lower()}/{a.name} {'patched' if changed else 'unchanged'}{suffix}", changed

    def _undo_to_controller_revision(self, a: Action, ns: str, suffix: str, dry_run: bool) -> tuple[str, bool]:
        store = self.world.store
        obj = store.get(a.kind, a.name, ns)
        target, skipped = undo_target(obj, store.list("ControllerRevision", ns), a.params.get("to_revision"))
        if target is None:
            return f"{a.kind.lower()}.apps/{a.name} {skipped}{suffix}", False
        if not dry_run:
            store.update(restored(obj, target))
        return f"{a.kind.lower()}.apps/{a.name} rolled back{suffix}", True

    def _exec_target(self, a: Action, ns: str) -> dict[str, Any]:
        store = self.world.store
        if a.kind == "Pod":
            pod = store.get("Pod", a.name, ns)
        else:
            d = store.get(a.kind, a.name, ns)
            sel = d["spec"]["selector"].get("matchLabels", {})
            pods = [p for p in store.list("Pod", ns, sel) if self.world.kubelet.process(p)]
            if not pods:
                raise ClusterError(f"no running pod of {a.kind.lower()}/{a.name} to exec into")
            pod = pods[0]
        if not self.world.kubelet.process(pod):
            raise ClusterError(f"container not running in pod {pod['metadata']['name']}: cannot exec")
        return pod

    @staticmethod
    def _validate(obj: dict[str, Any]) -> None:
        spec = obj.get("spec", {})
        name = f'{obj["kind"]}.{obj["metadata"]["name"]}'
        if "replicas" in spec and (not isinstance(spec["replicas"], int) or spec["replicas"] < 0):
            raise ClusterError(f'{name} is invalid: spec.replicas: Invalid value: {spec["replicas"]!r}: '
                               f"must be greater than or equal to 0")
        if obj["kind"] == "Deployment":
            for i, c in enumerate(spec.get("template", {}).get("spec", {}).get("containers", [])):
                if not c.get("image"):
                    raise ClusterError(f"{name} is invalid: spec.template.spec.containers[{i}].image: Required value")
        if obj["kind"] == "Service":
            seen: set[str] = set()
            for i, p in enumerate(spec.get("ports", [])):
                if p.get("name") in seen:
                    raise ClusterError(f'{name} is invalid: spec.ports[{i}].name: Duplicate value: "{p["name"]}"')
                seen.add(p.get("name", ""))
                tp = p.get("targetPort")
                if isinstance(tp, int) and not 0 < tp < 65536:
                    raise ClusterError(f"{name} is invalid: spec.ports[{i}].targetPort: Invalid value: {tp}")

    def _put(self, manifest: dict[str, Any]) -> None:
        store = self.world.store
        kind, meta = manifest["kind"], manifest["metadata"]
        if store.exists(kind, meta["name"], meta.get("namespace")):
            cur = copy.deepcopy(store.get(kind, meta["name"], meta.get("namespace")))
            for key, val in manifest.items():
                if key in ("apiVersion", "kind", "status"):
                    continue
                if key == "metadata":
                    cur["metadata"]["labels"] = dict(val.get("labels") or {})
                    cur["metadata"]["annotations"] = dict(val.get("annotations") or {})
                else:
                    cur[key] = copy.deepcopy(val)
            for key in [k for k in cur if k not in manifest and k not in ("apiVersion", "kind", "metadata",
                                                                          "status")]:
                del cur[key]
            self._validate(cur)
            store.update(cur)
        else:
            self._validate(manifest)
            store.create(clean_manifest(manifest))

    def snapshot(self, refs: builtins.list[Ref]) -> builtins.list[dict[str, Any]]:
        out = []
        for kind, name, ns in refs:
            ns = ns or self.namespace
            if self.world.store.exists(kind, name, None if kind == "Node" else ns):
                out.append(clean_manifest(self.world.store.get(kind, name, None if kind == "Node" else ns)))
            else:
                out.append({"kind": kind, "metadata": {"name": name, "namespace": ns}, "absent": True})
        return out

    def restore(self, snapshot: builtins.list[dict[str, Any]]) -> None:
        store = self.world.store
        for m in reversed(snapshot):
            kind, meta = m["kind"], m["metadata"]
            ns = None if kind == "Node" else meta.get("namespace")
            if m.get("absent"):
                if store.exists(kind, meta["name"], ns):
                    obj = store.get(kind, meta["name"], ns)
                    if kind == "Pod":
                        self.world.delete_pod(obj)
                    else:
                        store.delete(kind, meta["name"], ns)
                continue
            if kind == "Pod":
                continue  # pods are recreated by their controllers; their snapshot is informational
            self._put(copy.deepcopy(m))

    def wait(self, seconds: float) -> None:
        self.world.advance(seconds)

    # --- coordination -----------------------------------------------------------------------
    def acquire_lock(self, namespace: str, holder: str, ttl_s: float = 600.0) -> bool:
        """Take the namespace's write lock unless another holder's Lease is still live (``renewTime`` +
        ``leaseDurationSeconds`` still ahead), as ``KubeCluster`` does on a real API server: the create
        and the update are optimistic, so of two racing holders one wins and the other gets False."""
        store, now = self.world.store, self.world.clock.now
        spec = {"holderIdentity": holder, "leaseDurationSeconds": int(ttl_s), "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now)}
        try:
            lease = copy.deepcopy(store.get("Lease", LOCK_NAME, namespace))
        except NotFound:
            try:
                store.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                              "metadata": {"name": LOCK_NAME, "namespace": namespace}, "spec": spec})
                return True
            except Conflict:
                return False
        cur = lease["spec"]
        renewed = datetime.fromisoformat(cur["renewTime"].replace("Z", "+00:00")).timestamp()
        if cur.get("holderIdentity") not in (None, "", holder) and now < renewed + cur["leaseDurationSeconds"]:
            return False
        if cur.get("holderIdentity") == holder:
            spec["acquireTime"] = cur["acquireTime"]
        cur.update(spec)
        try:
            store.update(lease, precondition=True)
        except Conflict:
            return False
        return True

    def release_lock(self, namespace: str, holder: str) -> None:
        store = self.world.store
        try:
            lease = store.get("Lease", LOCK_NAME, namespace)
        except NotFound:
            return
        if lease["spec"].get("holderIdentity") != holder:
            return
        try:  # only the version read: a lease taken over meanwhile is not ours to delete
            store.delete("Lease", LOCK_NAME, namespace, resource_version=lease["metadata"]["resourceVersion"])
        except (NotFound, Conflict):
            pass
