"""The twin's API server: manifests in memory, resource versions, generations, events.

Objects are plain dicts shaped like Kubernetes manifests. Nothing here knows about faults or agents.
"""

from __future__ import annotations

import builtins
import copy
import json
import random
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from stratus.cluster.base import Conflict, NotFound
from stratus.cluster.selectors import matches

CLUSTER_SCOPED = {"Node", "Namespace", "PersistentVolume"}
EVENT_TTL_S = 3600.0
MAX_EVENTS = 2000


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Objects by kind, namespace and name, with the bookkeeping an API server does."""

    def __init__(self, clock: "Clock", rng: random.Random) -> None:
        self.clock = clock
        self.rng = rng
        self._objs: dict[str, dict[tuple[str | None, str], dict[str, Any]]] = {}
        self._rv = 1000
        self._events: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self.version = 0  # bumped on every create/update/delete (cache key for indexes)
        # Writes are atomic like the API server's, so clients sharing the twin across threads (racing
        # for the namespace lock) see one winner; the simulation itself is single-threaded.
        self._write = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Worlds are copied and pickled (what-if runs, checkpoints): the lock is not state."""
        state = self.__dict__.copy()
        del state["_write"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._write = threading.Lock()

    # --- identity ---------------------------------------------------------------------------
    def new_uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def suffix(self, n: int = 5) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # --- CRUD -------------------------------------------------------------------------------
    @staticmethod
    def _key(kind: str, name: str, namespace: str | None) -> tuple[str | None, str]:
        return (None if kind in CLUSTER_SCOPED else namespace, name)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        obj = self._objs.get(kind, {}).get(self._key(kind, name, namespace))
        if obj is None:
            where = f" in namespace {namespace}" if namespace and kind not in CLUSTER_SCOPED else ""
            raise NotFound(f'{kind.lower()} "{name}" not found{where}')
        return obj

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        return self._key(kind, name, namespace) in self._objs.get(kind, {})

    def list(self, kind: str, namespace: str | None = None,
             selector: dict[str, str] | None = None) -> builtins.list[dict[str, Any]]:
        out = []
        for (ns, _name), obj in self._objs.get(kind, {}).items():
            if namespace is not None and ns is not None and ns != namespace:
                continue
            if matches(obj["metadata"].get("labels"), selector):
                out.append(obj)
        return out

    def kinds(self) -> builtins.list[str]:
        return sorted(self._objs)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        with self._write:
            return self._create(obj)

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        kind, meta = obj["kind"], obj.setdefault("metadata", {})
        if "name" not in meta and meta.get("generateName"):
            meta["name"] = meta["generateName"] + self.suffix()
        key = self._key(kind, meta["name"], meta.get("namespace"))
        bucket = self._objs.setdefault(kind, {})
        if key in bucket:
            raise Conflict(f'{kind.lower()} "{meta["name"]}" already exists')
        self._rv += 1
        meta["uid"] = meta.get("uid") or self.new_uid()  # a controller may name it (no draw from the rng)
        meta["resourceVersion"] = str(self._rv)
        meta["creationTimestamp"] = rfc3339(self.clock.now)
        meta["generation"] = 1
        meta.setdefault("labels", {})
        bucket[key] = obj
        self.version += 1
        return obj

    def update(self, obj: dict[str, Any], precondition: bool = False) -> dict[str, Any]:
        """Replace an object; bumps generation when its spec changed (as the API server does).

        With ``precondition`` the write is optimistic, as a PUT carrying ``resourceVersion`` is on a real
        API server: it is refused with ``Conflict`` when the object changed since ``obj`` was read.
        """
        with self._write:
            return self._update(obj, precondition)

    def _update(self, obj: dict[str, Any], precondition: bool) -> dict[str, Any]:
        kind, meta = obj["kind"], obj["metadata"]
        key = self._key(kind, meta["name"], meta.get("namespace"))
        old = self._objs.get(kind, {}).get(key)
        if old is None:
            raise NotFound(f'{kind.lower()} "{meta["name"]}" not found')
        if precondition and meta.get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise Conflict(f'Operation cannot be fulfilled on {kind.lower()}s "{meta["name"]}": the object has '
                           f"been modified; please apply your changes to the latest version and try again")
        self._rv += 1
        meta["uid"] = old["metadata"]["uid"]
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
        meta["resourceVersion"] = str(self._rv)
        gen = old["metadata"].get("generation", 1)
        if json.dumps(old.get("spec"), sort_keys=True) != json.dumps(obj.get("spec"), sort_keys=True):
            gen += 1
        meta["generation"] = gen
        self._objs[kind][key] = obj
        self.version += 1
        return obj

    def delete(self, kind: str, name: str, namespace: str | None = None,
               resource_version: str | None = None) -> dict[str, Any]:
        """Remove an object; with ``resource_version`` only that version of it (a delete precondition)."""
        with self._write:
            return self._delete(kind, name, namespace, resource_version)

    def _delete(self, kind: str, name: str, namespace: str | None, resource_version: str | None) -> dict[str, Any]:
        key = self._key(kind, name, namespace)
        cur = self._objs.get(kind, {}).get(key)
        if cur is not None and resource_version is not None and cur["metadata"]["resourceVersion"] != resource_version:
            raise Conflict(f'Precondition failed for {kind.lower()}s "{name}": the object has been modified')
        obj = self._objs.get(kind, {}).pop(key, None)
        if obj is None:
            raise NotFound(f'{kind.lower()} "{name}" not found')
        self.version += 1
        return obj

    # --- events -----------------------------------------------------------------------------
    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str, component: str,
              field_path: str | None = None, host: str | None = None) -> None:
        meta = obj["metadata"]
        key = (meta.get("uid"), reason, message)
        now = rfc3339(self.clock.now)
        ev = self._events.get(key)
        if ev is not None:
            ev["count"] += 1
            ev["lastTimestamp"] = now
            ev["_t"] = self.clock.now
            self._events.move_to_end(key)
            return
        involved = {"kind": obj["kind"], "name": meta["name"], "namespace": meta.get("namespace"),
                    "uid": meta.get("uid"), "apiVersion": obj.get("apiVersion", "v1")}
        if field_path:
            involved["fieldPath"] = field_path
        source = {"component": component}
        if host:
            source["host"] = host
        self._events[key] = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{self.rng.getrandbits(64):016x}",
                         "namespace": meta.get("namespace") or "default"},
            "involvedObject": involved, "type": type_, "reason": reason, "message": message,
            "source": source, "reportingComponent": component, "count": 1,
            "firstTimestamp": now, "lastTimestamp": now, "_t": self.clock.now,
        }
        if len(self._events) > MAX_EVENTS:
            self._events.popitem(last=False)

    def prune_events(self) -> None:
        horizon = self.clock.now - EVENT_TTL_S
        while self._events:
            key, ev = next(iter(self._events.items()))
            if ev["_t"] >= horizon:
                break
            self._events.popitem(last=False)

    def events(self, namespace: str | None = None, since: float | None = None) -> Iterable[dict[str, Any]]:
        for ev in self._events.values():
            if namespace and ev["metadata"]["namespace"] != namespace:
                continue
            if since is not None and ev["_t"] < since:
                continue
            yield ev


class Clock:
    """The simulated clock. Starts at 2026-01-01T00:00:00Z."""

    EPOCH = 1767225600.0

    def __init__(self, tick_s: float = 5.0) -> None:
        self.now = self.EPOCH
        self.tick_s = tick_s
