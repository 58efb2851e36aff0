"""``KubeCluster``: the Cluster protocol over a real Kubernetes API server (the official client).

Connects with a kubeconfig file and context, or with the pod's service account (in-cluster config).
Reads are bounded like the twin's (an "N more omitted" marker closes a cut listing). Writes go through
``stratus.cluster.mutate``, the client-side half of kubectl shared with the twin, and are sent as a
full replacement carrying the object's ``resourceVersion``, so a concurrent change is a 409 that is
retried from a fresh read; ``dry_run=True`` asks the API server for a server-side dry run
(``dryRun=All``): admission and validation run, nothing is stored. ``patch`` is sent as the patch
itself (JSON, merge or strategic merge), as ``kubectl patch`` does, so the server's merge rules apply.
Snapshots are full manifests without server-set fields; ``restore`` re-applies them in dependency
order. The namespace write lock is a ``coordination.k8s.io`` Lease written with optimistic
concurrency. Catalogued database commands (the ``exec`` verb, ``read_db``) run as the client's command
line (``dbshell``) through ``pods/exec`` (``kubeexec``); a non-zero exit fails the action, naming the
command with its passwords masked. Telemetry comes from a Prometheus / Alertmanager HTTP API by URL (``promhttp``).
"""

from __future__ import annotations

import builtins
import copy
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from stratus.cluster import kubeexec
from stratus.cluster.actions import Action, ActionResult
from stratus.cluster.base import ClusterError, Conflict, Manifest, NotFound, Ref, epoch, omitted_marker
from stratus.cluster.dbshell import db_argv, parse_state, redacted_argv
from stratus.cluster.kinds import KINDS
from stratus.cluster.kubeapi import KubeApi, NotServed, api_client
from stratus.cluster.mutate import clean_manifest, mutate, previous_revision_template
from stratus.cluster.promhttp import PrometheusHTTP
from stratus.cluster.rollback import REVISION_KINDS, skipped_rollback, undo_target

LOCK_NAME = "stratus-tnr-lock"
FIELD_MANAGER = "stratus"
EVENTS_FETCH_MAX = 5000  # events are listed in storage order: fetch this many, then keep the newest
LOG_BYTES_MAX = 2_000_000
DELETE_WAIT_S = 30.0
DELETE_POLL_S = 0.2
PATCH_CONTENT_TYPES = {"json": "application/json-patch+json", "merge": "application/merge-patch+json",
                       "strategic": "application/strategic-merge-patch+json"}
RESTORE_ORDER: list[str] = yaml.safe_load(
    (Path(__file__).parent / "data" / "restore_order.yaml").read_text())["restore_order"]


def _rfc3339_micro(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event_time(ev: Manifest) -> float:
    for key in ("lastTimestamp", "eventTime", "firstTimestamp"):
        t = epoch(ev.get(key))
        if t is not None:
            return t
    return epoch(ev.get("metadata", {}).get("creationTimestamp")) or 0.0


def _restore_rank(m: Manifest) -> int:
    return RESTORE_ORDER.index(m["kind"]) if m["kind"] in RESTORE_ORDER else len(RESTORE_ORDER)


_on_conflict = retry(retry=retry_if_exception_type(Conflict), stop=stop_after_attempt(5),
                     wait=wait_exponential(multiplier=0.05, max=1), reraise=True)


CLAIM_MUTABLE = ("resources", "volumeName", "volumeAttributesClassName")
"""What a PersistentVolumeClaim's update may change (or the binder fills in); the rest of its spec is fixed."""


def _claim_spec(m: Manifest) -> dict[str, Any]:
    return {k: v for k, v in (m.get("spec") or {}).items() if k not in CLAIM_MUTABLE}


class KubeCluster:
    """A Cluster backed by a real API server.

    Args:
        kubeconfig: kubeconfig file (default: ``$KUBECONFIG`` or ``~/.kube/config``).
        context: kubeconfig context (default: its current context).
        namespace: the namespace used when an action or read names none.
        in_cluster: use the pod's service account; ``None`` decides as kubectl does.
        prometheus_url: base URL of a Prometheus HTTP API (``query``, ``query_range``).
        alertmanager_url: base URL of an Alertmanager (``alerts``; else Prometheus's firing alerts).
        api: a ready ``KubeApi`` (tests, or a caller with its own ``ApiClient``).
    """

    is_twin = False  # approval "auto" still asks a human before changing a real cluster

    def __init__(self, kubeconfig: str | None = None, *, context: str | None = None, namespace: str = "default",
                 in_cluster: bool | None = None, prometheus_url: str | None = None,
                 alertmanager_url: str | None = None, api: KubeApi | None = None) -> None:
        self.api = api or KubeApi(api_client(kubeconfig, context, in_cluster))
        self.namespace = namespace
        self.telemetry = PrometheusHTTP(prometheus_url, alertmanager_url)

    def _ns(self, kind: str, namespace: str | None) -> str | None:
        return (namespace or self.namespace) if KINDS.get(kind, {}).get("namespaced", True) else None

    # --- reads ------------------------------------------------------------------------------
    def list(self, kind: str, namespace: str | None = None, selector: dict[str, str] | None = None,
             limit: int = 200) -> builtins.list[Manifest]:
        """Up to ``limit`` objects (all namespaces when ``namespace`` is None), then an Omitted marker."""
        sel = ",".join(f"{k}={v}" for k, v in (selector or {}).items()) or None
        try:
            out = self.api.call("LIST", kind, namespace=namespace, label_selector=sel, limit=limit)
        except NotServed:  # e.g. no Chaos Mesh installed: there are no objects of that kind
            return []
        api_version = out.get("apiVersion", "v1")
        items = [{"apiVersion": api_version, "kind": kind, **i} for i in out.get("items", [])]
        meta = out.get("metadata") or {}
        if meta.get("continue"):
            more = meta.get("remainingItemCount")
            msg = (omitted_marker(len(items) + int(more), len(items), kind.lower() + "s") if more
                   else f"... more {kind.lower()}s omitted")
            items.append({"kind": "Omitted", "message": msg})
        return items

    def get(self, kind: str, name: str, namespace: str | None = None) -> Manifest:
        return self.api.call("GET", kind, name, self._ns(kind, namespace))

    def events(self, namespace: str | None = None, since: float | None = None,
               limit: int = 200) -> builtins.list[Manifest]:
        """Events, oldest first; past ``limit`` the newest are kept after an Omitted marker."""
        raw = self.api.call("LIST", "Event", namespace=namespace, limit=EVENTS_FETCH_MAX).get("items", [])
        evs = sorted((e for e in raw if since is None or _event_time(e) >= since), key=_event_time)
        evs = [{"apiVersion": "v1", "kind": "Event", **e} for e in evs]
        if len(evs) > limit:
            return [{"kind": "Omitted", "message": omitted_marker(len(evs), limit, "events")}] + evs[-limit:]
        return evs

    def logs(self, pod: str, namespace: str, container: str | None = None, tail: int = 200,
             since: float | None = None, previous: bool = False) -> builtins.list[str]:
        params: dict[str, Any] = {"previous": previous, "limit_bytes": LOG_BYTES_MAX}
        if container:
            params["container"] = container
        if since is not None:
            params["since_seconds"] = max(1, int(time.time() - since))
        lines = self.api.pod_log(pod, namespace, **params).splitlines()
        if len(lines) > tail:
            return [omitted_marker(len(lines), tail, "lines")] + lines[-tail:]
        return lines

    def query(self, promql: str, at: float | None = None) -> dict[str, Any]:
        return self.telemetry.query(promql, at)

    def query_range(self, promql: str, start: float, end: float, step: float) -> dict[str, Any]:
        return self.telemetry.query_range(promql, start, end, step)

    def traces(self, service: str | None = None, since: float | None = None,
               limit: int = 50) -> builtins.list[dict[str, Any]]:
        return []  # no tracing backend is wired to real clusters yet: agents treat this as "no traces"

    def alerts(self) -> builtins.list[dict[str, Any]]:
        return self.telemetry.alerts()

    def now(self) -> float:
        return time.time()

    def read_db(self, action: Action) -> dict[str, Any]:
        """Run the catalogued state read (``getUser``, ``CONFIG GET requirepass``) and parse its answer."""
        cmd = action.params.get("db_command") or {}
        out = self._run_db(action, action.namespace or self.namespace)
        try:
            return parse_state(cmd, out)
        except (ValueError, KeyError) as exc:
            raise ClusterError(f"cannot read the answer of `{' '.join(redacted_argv(cmd))}`: {exc}") from exc

    def _run_db(self, a: Action, ns: str) -> str:
        """Run ``a``'s db_command in its container; its stdout, or a ClusterError naming the command."""
        cmd = self._db_command(a, ns)
        pod, container = kubeexec.target(self.api, a, ns)
        code, out, err = kubeexec.run(self.api, pod, ns, container, db_argv(cmd))
        if code != 0:
            detail = (err.strip() or out.strip() or "no output").splitlines()[-1]
            raise ClusterError(f"`{' '.join(redacted_argv(cmd))}` in pod {ns}/{pod} (container {container}) "
                               f"exited with code {code}: {detail}")
        return out

    # --- writes -----------------------------------------------------------------------------
    def apply(self, action: Action, dry_run: bool = False) -> ActionResult:
        try:
            msg, changed = self._apply(action, dry_run)
            return ActionResult(ok=True, action=action.model_dump(), message=msg, dry_run=dry_run, changed=changed)
        except (ClusterError, ValueError, KeyError) as exc:
            return ActionResult(ok=False, action=action.model_dump(), message=str(exc), dry_run=dry_run)

    def _wait_gone(self, kind: str, name: str, ns: str | None) -> None:
        """Wait (bounded, as ``kubectl delete`` does) while finalizers hold a deleted object, so a plan's next
        action can re-create it; raise when it is still there after ``DELETE_WAIT_S``."""
        deadline = time.monotonic() + DELETE_WAIT_S
        for _ in range(int(DELETE_WAIT_S / DELETE_POLL_S) + 1):
            try:
                self.api.call("GET", kind, name, ns)
            except NotFound:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(DELETE_POLL_S)
        raise ClusterError(f"{kind.lower()}/{name} is still being deleted after {DELETE_WAIT_S:.0f} s (finalizers)")

    def _apply(self, a: Action, dry_run: bool) -> tuple[str, bool]:
        dr = {"dry_run": "All"} if dry_run else {}
        suffix = " (server dry run)" if dry_run else ""
        ns = self._ns(a.kind, a.namespace)
        if a.verb in ("apply", "create"):
            return self._apply_manifest(a, dr, suffix)
        if a.verb == "delete":
            gone = self.api.call("DELETE", a.kind, a.name, ns, **dr)
            if not dry_run and a.kind != "Pod" and a.params.get("wait") is not False and \
                    ((gone or {}).get("metadata") or {}).get("deletionTimestamp"):
                self._wait_gone(a.kind, a.name, ns)
            return f'{a.kind.lower()} "{a.name}" deleted{suffix}', True
        if a.verb == "exec":
            return self._exec(a, self._ns("Pod", a.namespace) or self.namespace, dry_run), True
        if a.verb == "patch":
            kind = a.params.get("type", "strategic")
            if kind not in PATCH_CONTENT_TYPES:
                raise ClusterError(f"unknown patch type {kind!r} for {a.kind.lower()}/{a.name}")
            before = self.api.call("GET", a.kind, a.name, ns)
            after = self.api.call("PATCH", a.kind, a.name, ns, body=a.params.get("patch"),
                                  content_type=PATCH_CONTENT_TYPES[kind], field_manager=FIELD_MANAGER, **dr)
            changed = clean_manifest(before) != clean_manifest(after)
            return f"{a.kind.lower()}/{a.name} {'patched' if changed else 'unchanged'}{suffix}", changed
        if a.verb == "rollout_undo" and a.kind in REVISION_KINDS:
            return self._undo_to_controller_revision(a, ns, dr, suffix)
        changed = self._read_modify_write(a, ns, dr)
        if a.verb == "rollout_undo" and not changed:  # the revision's template is the live one
            return f"deployment.apps/{a.name} {skipped_rollback(a.params.get('to_revision') or 0)}{suffix}", False
        if a.verb == "rollout_undo":
            return f"deployment.apps/{a.name} rolled back{suffix}", True
        return f"{a.kind.lower()}/{a.name} {'patched' if changed else 'unchanged'}{suffix}", changed

    def _exec(self, a: Action, ns: str, dry_run: bool) -> str:
        if dry_run:  # exec has no server dry run: check the permission, command and target instead
            shown = " ".join(redacted_argv(self._db_command(a, ns)))
            pod, container = kubeexec.target(self.api, a, ns)
            return f"would run `{shown}` in pod {pod} (container {container}) (server dry run)"
        out = self._run_db(a, ns).strip()
        return out.splitlines()[-1] if out else f"ran `{' '.join(redacted_argv(a.params['db_command']))}`"

    def _db_command(self, a: Action, ns: str) -> dict[str, Any]:
        """``a``'s db_command once the credentials may exec in ``ns``: asked first (SelfSubjectAccessReviews),
        since a refused WebSocket upgrade says less than this error."""
        missing = kubeexec.missing_verbs(self.api, ns)
        if missing:
            raise kubeexec.forbidden(ns, missing)
        cmd: dict[str, Any] = a.params.get("db_command") or {}
        if not cmd.get("op"):
            raise ClusterError("KubeCluster runs only catalogued database commands in containers: "
                               "params.db_command is missing (see `kubectl exec` in the guard's catalogue)")
        return cmd

    @_on_conflict
    def _read_modify_write(self, a: Action, ns: str | None, dr: dict[str, str]) -> bool:
        """GET, change, PUT with the read ``resourceVersion``; a 409 starts over from a fresh GET."""
        obj = self.api.call("GET", a.kind, a.name, ns)
        if a.verb == "rollout_undo":
            rss = self.api.call("LIST", "ReplicaSet", namespace=ns).get("items", [])
            new = copy.deepcopy(obj)
            new["spec"]["template"] = previous_revision_template(obj, rss, a.params.get("to_revision"))
        else:
            new = mutate(obj, a, now=time.time())
        if clean_manifest(new) == clean_manifest(obj):
            return False
        self.api.call("PUT", a.kind, a.name, ns, body=new, field_manager=FIELD_MANAGER, **dr)
        return True

    def _undo_to_controller_revision(self, a: Action, ns: str | None, dr: dict[str, str],
                                     suffix: str) -> tuple[str, bool]:
        """``kubectl rollout undo`` of a StatefulSet or DaemonSet: its ControllerRevision's data (a strategic
        merge patch replacing the pod template) is sent as the patch; the server merges it."""
        obj = self.api.call("GET", a.kind, a.name, ns)
        revisions = self.api.call("LIST", "ControllerRevision", namespace=ns).get("items", [])
        target, skipped = undo_target(obj, revisions, a.params.get("to_revision"))
        if target is None:
            return f"{a.kind.lower()}.apps/{a.name} {skipped}{suffix}", False
        try:
            self.api.call("PATCH", a.kind, a.name, ns, body=target["data"],
                          content_type=PATCH_CONTENT_TYPES["strategic"], field_manager=FIELD_MANAGER, **dr)
        except ClusterError as exc:
            raise ClusterError(f"failed restoring revision {target.get('revision')} of "
                               f"{a.kind.lower()}/{a.name}: {exc}") from exc
        return f"{a.kind.lower()}.apps/{a.name} rolled back{suffix}", True

    def _apply_manifest(self, a: Action, dr: dict[str, str], suffix: str) -> tuple[str, bool]:
        manifest = copy.deepcopy(a.params.get("manifest") or {})
        kind, meta = manifest.get("kind"), manifest.get("metadata") or {}
        if not kind or not meta.get("name"):
            raise ClusterError("manifest needs kind and metadata.name")
        ns = self._ns(kind, meta.get("namespace") or a.namespace)
        if ns:
            meta["namespace"] = ns
        manifest.setdefault("apiVersion", self.api.resource(kind).group_version)
        if a.verb == "create":
            self.api.call("POST", kind, namespace=ns, body=clean_manifest(manifest), field_manager=FIELD_MANAGER, **dr)
            return f"{kind.lower()}/{meta['name']} created{suffix}", True
        try:
            self.api.call("GET", kind, meta["name"], ns)
            verb = "configured"
        except NotFound:
            verb = "created"
        # Server-side apply: the API server merges the manifest with what others own (kubectl apply --server-side).
        self.api.call("PATCH", kind, meta["name"], ns, body=clean_manifest(manifest),
                      content_type="application/apply-patch+yaml", field_manager=FIELD_MANAGER,
                      force_conflicts=True, **dr)
        return f"{kind.lower()}/{meta['name']} {verb}{suffix}", True

    def snapshot(self, refs: builtins.list[Ref]) -> builtins.list[Manifest]:
        out = []
        for kind, name, namespace in refs:
            ns = self._ns(kind, namespace)
            try:
                out.append(clean_manifest(self.api.call("GET", kind, name, ns)))
            except NotFound:
                out.append({"kind": kind, "metadata": {"name": name, "namespace": ns}, "absent": True})
        return out

    def restore(self, snapshot: builtins.list[Manifest]) -> None:
        """Put every object back as snapshotted: removals first (dependents first), then the rest in order."""
        absent = sorted((m for m in snapshot if m.get("absent")), key=_restore_rank, reverse=True)
        for m in absent:
            try:
                self.api.call("DELETE", m["kind"], m["metadata"]["name"], self._ns(m["kind"], m["metadata"].get("namespace")))
            except NotFound:
                pass
        for m in sorted((m for m in snapshot if not m.get("absent")), key=_restore_rank):
            if m["kind"] != "Pod":  # pods are recreated by their controllers; their snapshot is informational
                self._put(copy.deepcopy(m))

    @_on_conflict
    def _put(self, m: Manifest) -> None:
        kind, name = m["kind"], m["metadata"]["name"]
        ns = self._ns(kind, m["metadata"].get("namespace"))
        try:
            cur = self.api.call("GET", kind, name, ns)
        except NotFound:
            if kind == "Service":  # a re-created Service gets a fresh cluster IP; the old one may be taken
                m.get("spec", {}).pop("clusterIP", None)
                m.get("spec", {}).pop("clusterIPs", None)
            self.api.call("POST", kind, namespace=ns, body=m, field_manager=FIELD_MANAGER)
            return
        if kind == "PersistentVolumeClaim" and _claim_spec(cur) != _claim_spec(m):
            # a claim's spec is immutable: the claim a plan created in place of this one goes, this one comes back
            self.api.call("DELETE", kind, name, ns)
            self._wait_gone(kind, name, ns)
            self.api.call("POST", kind, namespace=ns, body=m, field_manager=FIELD_MANAGER)
            return
        m["metadata"]["resourceVersion"] = cur["metadata"]["resourceVersion"]
        if kind == "Service":  # cluster IPs are immutable: keep the live ones
            for key in ("clusterIP", "clusterIPs"):
                if key in cur.get("spec", {}):
                    m.setdefault("spec", {})[key] = cur["spec"][key]
        self.api.call("PUT", kind, name, ns, body=m, field_manager=FIELD_MANAGER)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    # --- coordination -----------------------------------------------------------------------
    def acquire_lock(self, namespace: str, holder: str, ttl_s: float = 600.0) -> bool:
        """Take the namespace's write lock unless another holder's Lease is still live.

        Create and update both race safely: the API server accepts only one create of the name and
        only one update per ``resourceVersion``; the loser gets a 409 and does not hold the lock.
        """
        now = time.time()
        spec = {"holderIdentity": holder, "leaseDurationSeconds": int(ttl_s), "acquireTime": _rfc3339_micro(now),
                "renewTime": _rfc3339_micro(now)}
        try:
            lease = self.api.call("GET", "Lease", LOCK_NAME, namespace)
        except NotFound:
            try:
                self.api.call("POST", "Lease", namespace=namespace, body={
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LOCK_NAME, "namespace": namespace}, "spec": spec})
                return True
            except Conflict:
                return False
        cur = lease.get("spec") or {}
        other = cur.get("holderIdentity") not in (None, "", holder)
        expires = (epoch(cur.get("renewTime")) or 0.0) + float(cur.get("leaseDurationSeconds") or 0)
        if other and now < expires:
            return False
        if not other and cur.get("acquireTime"):
            spec["acquireTime"] = cur["acquireTime"]
        lease["spec"] = {**cur, **spec}
        try:
            self.api.call("PUT", "Lease", LOCK_NAME, namespace, body=lease)
        except Conflict:
            return False
        return True

    def release_lock(self, namespace: str, holder: str) -> None:
        try:
            lease = self.api.call("GET", "Lease", LOCK_NAME, namespace)
        except NotFound:
            return
        if (lease.get("spec") or {}).get("holderIdentity") != holder:
            return
        try:  # only the version we read: a lease taken over meanwhile is not ours to delete
            self.api.call("DELETE", "Lease", LOCK_NAME, namespace,
                          body={"preconditions": {"resourceVersion": lease["metadata"]["resourceVersion"]}})
        except (NotFound, Conflict):
            pass
