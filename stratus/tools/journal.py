"""The change journal: what changed in the watched namespaces, and the last-known-healthy manifests.

A deployed STRATUS runs ``ChangeJournal.observe`` between incidents (``stratus serve``, ``stratus run``,
the Python API; the benchmark during its warm-up, as a deployed STRATUS would). Each poll lists the
watched kinds through the Cluster protocol, diffs them against what it saw last (by resourceVersion,
then by desired state, so status churn is no change) and records creates, updates and deletes with a
field-level summary (image, env, selector, ports, replicas, requests, probes, taints, ...).

A version of an object becomes *last-known-healthy* once the namespace has been healthy with it for
``healthy_dwell_s`` (health from ``stratus.tools.analyzers.assess``: telemetry plus latent critical
misconfigurations); a change whose result reached that state is *settled*: a routine rollout, a scaling
or a config edit that stayed healthy. Only unsettled changes are evidence
(``stratus.tools.analyzers.changes``), and the generic plans revert to, or re-create from, the
last-known-healthy manifests. Memory is bounded: ``max_changes`` records, one manifest per object and
version kind, ``LIST_LIMIT`` objects per kind and namespace.

Secrets are recorded by name only; their last healthy contents stay in this process's memory
(``SecretMemory``) so a deleted one can be re-created (``restore_secret``, ``with_secret_data``).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
import weakref
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import yaml

from stratus.cluster.actions import Action
from stratus.cluster.base import Cluster, ClusterError
from stratus.cluster.mutate import STRATUS_CHANGE, clean_manifest
from stratus.context import Context
from stratus.tools.analyzers.assess import assess
from stratus.tools.redact import MASK

_DATA = yaml.safe_load((Path(__file__).parent / "data" / "journal.yaml").read_text())
KINDS: dict[str, dict[str, Any]] = _DATA["kinds"]
FIELDS: dict[str, dict[str, str]] = _DATA["fields"]
WORKLOAD_KINDS: frozenset[str] = frozenset(_DATA["workload_kinds"])
IGNORED_ANNOTATIONS: frozenset[str] = frozenset(_DATA["ignored_annotations"])
LIST_LIMIT = 500
POLL_S = 15.0
"""How often a watching STRATUS polls (``stratus serve``, the benchmark's warm-up)."""
MAX_VALUE_CHARS = 160
SECRET_FIELDS = ("type", "data", "immutable")
"""What ``SecretMemory`` keeps of a Secret (the API server returns ``stringData`` merged into ``data``)."""

Key = tuple[str, str, str | None]


def desired(kind: str, manifest: dict[str, Any], names_only: bool = False) -> dict[str, Any]:
    """The part of a manifest a person changes: no status, server fields or controller annotations."""
    if names_only:
        meta = manifest.get("metadata") or {}
        return {"apiVersion": manifest.get("apiVersion", "v1"), "kind": kind,
                "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")}}
    out = clean_manifest(manifest)
    meta = out.setdefault("metadata", {})
    ann = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in IGNORED_ANNOTATIONS}
    if kind == "Node" or not ann:
        meta.pop("annotations", None)  # the kubelet and node controllers annotate Nodes all the time
    else:
        meta["annotations"] = ann
    out.setdefault("kind", kind)
    return out


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def _get(obj: Any, path: str) -> Any:
    """The value at a dotted path; ``containers[]`` maps each container's name to the rest of the path."""
    head, sep, rest = path.partition("[].")
    cur = obj
    for part in head.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if not sep:
        return cur
    return {c.get("name", str(i)): _get(c, rest) for i, c in enumerate(cur or []) if isinstance(c, dict)}


def _by_name(value: Any) -> Any:
    """Lists of named entries (env, ports, volumes) as dicts by name, so a diff names the entry."""
    if isinstance(value, list) and value and all(isinstance(x, dict) and "name" in x for x in value):
        return {x["name"]: {k: v for k, v in x.items() if k != "name"} for x in value}
    return value


def _diff(label: str, path: str, a: Any, b: Any, out: list[dict[str, Any]]) -> None:
    a, b = _by_name(a), _by_name(b)
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict) and label in ("image", "env", "requests", "limits", "ports",
                                                                 "command", "args", "data", "labels", "selector",
                                                                 "volumes", "nodeSelector", "readinessProbe",
                                                                 "livenessProbe", "startupProbe"):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                _diff(label, f"{path}.{k}", a.get(k), b.get(k), out)
        return
    out.append({"field": label, "path": path, "before": _short(a), "after": _short(b)})


def summarize(kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Field-level differences ``[{"field", "path", "before", "after"}]`` between two desired states."""
    if before is None or after is None:
        return []
    group = "workload" if kind in WORKLOAD_KINDS else kind if kind in FIELDS else "other"
    out: list[dict[str, Any]] = []
    for label, path in FIELDS[group].items():
        a, b = _get(before, path), _get(after, path)
        head, sep, rest = path.partition("[].")
        if not sep:
            _diff(label, path, a, b, out)
            continue
        for cname in sorted(set(a or {}) | set(b or {})):  # one entry per container, named
            _diff(label, f"{head}[{cname}].{rest}", (a or {}).get(cname), (b or {}).get(cname), out)
    if not out and before != after:
        top = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        out = [{"field": "other", "path": k, "before": _short(before.get(k)), "after": _short(after.get(k))}
               for k in top]
    return out


def _by_stratus(before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Whether this version came through STRATUS's write path (its pod-template marker appeared or
    changed): informational, since a person using the Cluster protocol's writes gets the marker too."""
    def mark(m: dict[str, Any] | None) -> Any:
        return (((m or {}).get("spec") or {}).get("template") or {}).get("metadata", {}).get(
            "annotations", {}).get(STRATUS_CHANGE)
    return mark(after) is not None and mark(after) != mark(before)


HOLD_MAX_S = 7200.0
"""How long an incident's hold on the healthy baseline lasts at most (``ChangeJournal.hold``)."""


class ChangeJournal:
    """Changes in watched namespaces, and the last-known-healthy manifest of every watched object."""

    def __init__(self, namespaces: tuple[str, ...] | list[str] = (), *, max_changes: int = 500,
                 healthy_dwell_s: float = 60.0, max_gone: int = 500) -> None:
        self.namespaces = list(namespaces)
        self.healthy_dwell_s = healthy_dwell_s
        self.changes: deque[dict[str, Any]] = deque(maxlen=max_changes)
        self._seq = 0
        self._rv: dict[Key, str] = {}
        self._current: dict[Key, dict[str, Any]] = {}
        self._since: dict[Key, float] = {}  # when the current version (or the absence) was first seen
        self._healthy: dict[Key, dict[str, Any]] = {}
        self._healthy_is_current: set[Key] = set()
        self._gone: OrderedDict[Key, float] = OrderedDict()  # deleted objects, oldest first
        self._max_gone = max_gone
        self.healthy_since: float | None = None
        self.unhealthy_since: float | None = None
        self.polls = 0
        self.last_poll: float | None = None
        self.unreadable: dict[str, str] = {}
        self.secrets = SecretMemory()
        self.holds: dict[str, float] = {}  # incident id -> when it began holding the healthy baseline
        self.id = uuid.uuid4().hex
        self._lock = threading.Lock()
        _LIVE[self.id] = self

    # --- observing --------------------------------------------------------------------------
    def _list(self, cluster: Cluster, default_ns: str) -> tuple[dict[Key, dict[str, Any]], set[str]]:
        seen: dict[Key, dict[str, Any]] = {}
        partial: set[str] = set()
        for kind, spec in KINDS.items():
            for ns in ([None] if spec.get("cluster_scoped") else (self.namespaces or [default_ns])):
                try:
                    items = cluster.list(kind, ns, limit=LIST_LIMIT)
                except ClusterError as exc:
                    self.unreadable[kind] = str(exc)[:200]
                    partial.add(kind)
                    continue
                for m in items:
                    if m.get("kind") == "Omitted":
                        partial.add(kind)
                        continue
                    meta = m.get("metadata") or {}
                    seen[(kind, meta.get("name", ""), ns)] = m
        return seen, partial

    def observe(self, cluster: Cluster, ctx: Context | None = None, *, healthy: bool | None = None) -> list[dict[str, Any]]:
        """Poll once: record what changed since the last poll and promote versions that stayed healthy.

        ``healthy`` overrides the health assessment (``assess``: no unhealthy component and no latent
        critical misconfiguration, so a broken version that has no traffic to show it is never promoted
        to last-known-healthy). Returns the changes recorded by this poll.
        """
        default_ns = self.namespaces[0] if self.namespaces else getattr(cluster, "namespace", "default")
        seen, partial = self._list(cluster, default_ns)
        now = cluster.now()
        if healthy is None:
            ctx = ctx or Context()
            healthy = all(not assess(cluster, ctx, ns).unhealthy for ns in (self.namespaces or [default_ns]))
        with self._lock:
            new = self._record(seen, partial, now)
            self._health(now, healthy)
            self.polls += 1
            self.last_poll = now
        return new

    def _change(self, now: float, key: Key, op: str, before: dict[str, Any] | None,
                after: dict[str, Any] | None) -> dict[str, Any]:
        self._seq += 1
        kind, name, ns = key
        c = {"id": self._seq, "at": now, "kind": kind, "name": name, "namespace": ns, "op": op,
             "fields": summarize(kind, before, after)[:20], "by_stratus": _by_stratus(before, after),
             "settled": False}
        self.changes.append(c)
        return c

    def _record(self, seen: dict[Key, dict[str, Any]], partial: set[str], now: float) -> list[dict[str, Any]]:
        first = self.polls == 0
        new: list[dict[str, Any]] = []
        for key, m in seen.items():
            rv = str((m.get("metadata") or {}).get("resourceVersion", ""))
            if rv and self._rv.get(key) == rv:
                continue
            self._rv[key] = rv
            state = desired(key[0], m, bool(KINDS[key[0]].get("names_only")))
            before = self._current.get(key)
            if key[0] == "Secret" and self.secrets.seen(key, m) and before == state:
                self._since[key] = now  # new contents, same name: healthy again only after the dwell
                self._healthy_is_current.discard(key)
            if before == state:
                continue
            self._current[key] = state
            self._since[key] = now
            self._healthy_is_current.discard(key)
            if first:
                continue
            if before is None:
                self._gone.pop(key, None)
                new.append(self._change(now, key, "create", None, state))
            else:
                new.append(self._change(now, key, "update", before, state))
        for key in [k for k in self._current if k not in seen and k[0] not in partial]:
            before = self._current.pop(key)
            self._rv.pop(key, None)
            self._since[key] = now
            self._healthy_is_current.discard(key)
            self._healthy.setdefault(key, before)  # never healthy yet: the last version seen is all there is
            self.secrets.gone(key)
            self._gone[key] = now
            while len(self._gone) > self._max_gone:
                old, _t = self._gone.popitem(last=False)
                self._healthy.pop(old, None)
                self._since.pop(old, None)
                self.secrets.forget(old)
            new.append(self._change(now, key, "delete", before, None))
        return new

    def _health(self, now: float, healthy: bool) -> None:
        if not healthy:
            self.healthy_since = None
            if self.unhealthy_since is None:
                self.unhealthy_since = now
            return
        if self.healthy_since is None:
            self.healthy_since = now
        self.unhealthy_since = None
        if any(now - t < HOLD_MAX_S for t in self.holds.values()):
            return  # an open incident: health now is STRATUS's partial repair, not a baseline to keep
        settled: set[Key] = set()
        for key, since in list(self._since.items()):
            if key in self._healthy_is_current or now - max(since, self.healthy_since) < self.healthy_dwell_s:
                continue
            if key in self._current:
                self._healthy[key] = self._current[key]
                self.secrets.promote(key)
            self._healthy_is_current.add(key)
            settled.add(key)
        for c in self.changes:
            if not c["settled"] and (c["kind"], c["name"], c["namespace"]) in settled:
                c["settled"] = True

    def hold(self, incident_id: str, now: float) -> None:
        """Keep the last-known-healthy versions as they are while an incident is open.

        Once its symptoms are gone a namespace looks healthy while a silent fault may still be in place
        (a taint under running pods, a workload nobody calls scaled to zero); promoting that state
        would make the fault the new baseline and hide it from ``leftovers``. A hold older than
        ``HOLD_MAX_S`` no longer counts (an incident that crashed and was never resumed)."""
        with self._lock:
            self.holds.setdefault(incident_id, now)

    def release(self, incident_id: str) -> None:
        with self._lock:
            self.holds.pop(incident_id, None)

    # --- reading ----------------------------------------------------------------------------
    def _key(self, kind: str, name: str, namespace: str | None) -> Key:
        return (kind, name, None if KINDS.get(kind, {}).get("cluster_scoped") else namespace)

    def last_healthy(self, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """The last version of an object the namespace was healthy with (None when never seen healthy)."""
        with self._lock:
            m = self._healthy.get(self._key(kind, name, namespace))
            return copy.deepcopy(m) if m is not None else None

    def current_is_healthy(self, kind: str, name: str, namespace: str | None) -> bool:
        """Whether the object's current version (or its absence) has been seen healthy."""
        with self._lock:
            return self._key(kind, name, namespace) in self._healthy_is_current

    def deleted(self, kind: str, name: str, namespace: str | None) -> bool:
        with self._lock:
            return self._key(kind, name, namespace) in self._gone

    def onset(self) -> float | None:
        """When health last turned bad (None while it is good or was never measured)."""
        return self.unhealthy_since

    def unsettled(self, since: float, until: float, absent_deletes: bool = False) -> list[dict[str, Any]]:
        """Changes in ``[since, until]`` whose result has not been seen healthy, newest first.

        ``absent_deletes`` adds settled deletions of objects still gone: health lags a deletion (a
        workload with no pods has no unhealthy pod to count), so "healthy without it" is weak evidence
        until its consumers have had time to fail; the caller still asks whether they fail now."""
        with self._lock:
            return [copy.deepcopy(c) for c in reversed(self.changes)
                    if since <= c["at"] <= until and (not c["settled"] or absent_deletes and c["op"] == "delete"
                                                      and (c["kind"], c["name"], c["namespace"]) in self._gone)]

    def gone(self, kind: str, namespace: str | None) -> list[tuple[str, dict[str, Any]]]:
        """Deleted objects of ``kind`` still absent, newest deletion first, with their last healthy manifest."""
        with self._lock:
            return [(k[1], copy.deepcopy(self._healthy[k])) for k in reversed(self._gone)
                    if k[0] == kind and k[2] == self._key(kind, k[1], namespace)[2] and k in self._healthy]

    def secret_keys(self, name: str, namespace: str | None) -> list[str] | None:
        """The data keys of a Secret's last healthy contents (None when they were never read)."""
        with self._lock:
            return self.secrets.keys(("Secret", name, namespace))

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` changes, newest first (for reports and ``stratus`` output)."""
        with self._lock:
            return [copy.deepcopy(c) for c in list(reversed(self.changes))[:limit]]


class SecretMemory:
    """The last-known-healthy contents of Secrets, in this process's memory only, so a deleted Secret
    can be re-created. Nothing here reaches a change record, a report, a checkpoint or a log: copies,
    pickles and reprs of it carry no contents, and a plan names the Secret, never its data
    (``restore_secret`` / ``with_secret_data``)."""

    def __init__(self) -> None:
        self._now: dict[Key, dict[str, Any]] = {}
        self._healthy: dict[Key, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"<SecretMemory: {len(self._healthy)} Secret(s), contents withheld>"

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretMemory:
        return SecretMemory()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._now, self._healthy = {}, {}

    def seen(self, key: Key, manifest: dict[str, Any]) -> bool:
        """Record what a poll read; True when the contents differ from what was read before."""
        contents = {k: copy.deepcopy(manifest[k]) for k in SECRET_FIELDS if k in manifest}
        changed = self._now.get(key) != contents
        self._now[key] = contents
        return changed

    def promote(self, key: Key) -> None:
        if key in self._now:
            self._healthy[key] = self._now[key]

    def gone(self, key: Key) -> None:
        contents = self._now.pop(key, None)
        if contents is not None:
            self._healthy.setdefault(key, contents)  # never healthy yet: the last contents seen are all there is

    def forget(self, key: Key) -> None:
        self._healthy.pop(key, None)
        self._now.pop(key, None)

    def keys(self, key: Key) -> list[str] | None:
        contents = self._healthy.get(key)
        return None if contents is None else sorted(contents.get("data") or {})

    def contents(self, key: Key) -> dict[str, Any] | None:
        return copy.deepcopy(self._healthy.get(key))


_LIVE: weakref.WeakValueDictionary[str, ChangeJournal] = weakref.WeakValueDictionary()
"""Journals alive in this process, by id: a restore action names its journal, not the data."""
RESTORE = "restore_secret"


def restore_secret(journal: ChangeJournal, name: str, namespace: str) -> Action | None:
    """``kubectl create`` of a deleted Secret from the journal's memory, with every value masked: the
    action (and so the plan, its kubectl text and the transaction log) names the Secret and its keys;
    ``with_secret_data`` fills the values in only on the way to the cluster."""
    keys = journal.secret_keys(name, namespace)
    with journal._lock:
        contents = journal.secrets.contents(("Secret", name, namespace))
    if keys is None or contents is None:
        return None
    manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                **({"type": contents["type"]} if "type" in contents else {}), "data": {k: MASK for k in keys}}
    return Action(verb="create", kind="Secret", name=name, namespace=namespace,
                  params={"manifest": manifest, RESTORE: {"journal": journal.id, "name": name, "namespace": namespace}})


def with_secret_data(action: Action) -> Action:
    """The action as the cluster must receive it: a Secret restore gets its contents back from the
    journal's memory (the action itself is unchanged). Raises ``ClusterError`` naming the Secret when
    the memory is gone (STRATUS restarted since)."""
    ref = action.params.get(RESTORE)
    if not ref:
        return action
    journal = _LIVE.get(str(ref.get("journal")))
    key: Key = ("Secret", str(ref.get("name")), ref.get("namespace"))
    contents = None
    if journal is not None:
        with journal._lock:
            contents = journal.secrets.contents(key)
    if contents is None:
        raise ClusterError(f"Secret {key[1]} in namespace {key[2]}: its last healthy contents are no longer in "
                           f"memory (STRATUS restarted since it read them); re-create it from its source")
    manifest = {**copy.deepcopy(action.params["manifest"]), **contents}
    return action.model_copy(update={"params": {**action.params, "manifest": manifest}})
