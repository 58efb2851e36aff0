"""The mirror world: the twin's models run on objects copied from a real API server, in wall time.

``MirrorWorld`` is a ``World`` that starts empty (no app manifests, no boot) and runs none of the twin's
controllers: the real controller manager, scheduler and endpoints controller do that work, and their
objects are copied in (``MirrorStore.put``) by ``twin.kubelet_agent``. What runs here is what a node and
its workload would do: the twin kubelet (processes, probes, restarts, logs), the network and traffic
models, and Prometheus (scrapes and rule evaluation), with ``clock.now`` set to wall time each pass.

Two more things make the real API the source of truth:
- events the twin kubelet records are also queued in ``MirrorStore.outbox`` for the agent to write,
  aggregated by (pod uid, reason, message) with a growing ``count`` as the real event recorder does;
- while a fault is injected (``MirrorWorld.journal``) the twin's injectors change the mirror as usual,
  but every create, update and delete is also recorded, so the agent can apply the same changes through
  the API (``twin.kubelet_agent.inject``).
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stratus.twin.apps import App
from stratus.twin.controllers import Controllers
from stratus.twin.store import Store
from stratus.twin.world import World

MAX_OUTBOX = 20000  # events waiting to be written; beyond it the oldest are dropped (an event storm)

Change = tuple[str, dict[str, Any]]  # ("create" | "update" | "delete", manifest)


class MirrorStore(Store):
    """A Store whose objects keep the API server's identity (uid, resourceVersion) and whose events are
    queued for the API."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self.journal: list[Change] | None = None

    # --- copies of API objects --------------------------------------------------------------
    def put(self, obj: dict[str, Any]) -> None:
        """Insert or replace ``obj`` as the API server has it (metadata untouched)."""
        kind, meta = obj["kind"], obj["metadata"]
        self._objs.setdefault(kind, {})[self._key(kind, meta["name"], meta.get("namespace"))] = obj
        self.version += 1

    def remove(self, kind: str, name: str, namespace: str | None) -> None:
        if self._objs.get(kind, {}).pop(self._key(kind, name, namespace), None) is not None:
            self.version += 1

    def replace_kind(self, kind: str, objs: list[dict[str, Any]]) -> None:
        """Make the store's ``kind`` exactly ``objs`` (a fresh list from the API)."""
        self._objs[kind] = {self._key(kind, o["metadata"]["name"], o["metadata"].get("namespace")): o
                            for o in objs}
        self.version += 1

    # --- changes by fault injectors: applied locally and journaled for the API ---------------
    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.journal is None:
            return super().create(obj)
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})
        self.journal.append(("create", copy.deepcopy(obj)))
        self.put(obj)
        return obj

    # Journaled changes go to the API server, which enforces any precondition when they are replayed.
    def update(self, obj: dict[str, Any], precondition: bool = False) -> dict[str, Any]:
        if self.journal is None:
            return super().update(obj, precondition)
        self.get(obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))  # NotFound as usual
        self.journal.append(("update", copy.deepcopy(obj)))
        self.put(obj)
        return obj

    def delete(self, kind: str, name: str, namespace: str | None = None,
               resource_version: str | None = None) -> dict[str, Any]:
        if self.journal is None:
            return super().delete(kind, name, namespace, resource_version)
        obj = self.get(kind, name, namespace)
        self.journal.append(("delete", obj))
        self.remove(kind, name, namespace)
        return obj

    # --- events -----------------------------------------------------------------------------
    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str, component: str,
              field_path: str | None = None, host: str | None = None) -> None:
        super().event(obj, type_, reason, message, component, field_path, host)
        key = (obj["metadata"].get("uid"), reason, message)
        ev = self._events.get(key)
        if ev is not None:
            self.outbox[key] = ev
            self.outbox.move_to_end(key)
            while len(self.outbox) > MAX_OUTBOX:
                self.outbox.popitem(last=False)


class MirrorControllers(Controllers):
    """No twin controllers run in the mirror; garbage collection (which fault injectors ask for after
    deleting a Deployment) is the real garbage collector's job."""

    def garbage_collect(self) -> None:
        return None


class MirrorWorld(World):
    """The twin's models over a real cluster's objects. ``namespace`` is where the app's workload
    (traffic from its load generator) runs; pods of every namespace run on the twin kubelet."""

    def __init__(self, app: str | App = "hotel-reservation", namespace: str | None = None, seed: int = 0,
                 tick_s: float = 1.0, scrape_s: float = 15.0, rule_s: float | None = None,
                 rules: str = "benchmark", now: float | None = None) -> None:
        super().__init__(app, seed=seed, namespace=namespace, tick_s=tick_s, scrape_s=scrape_s, rules=rules,
                         empty=True)
        self.store: MirrorStore = MirrorStore(self.clock, self.rng)
        self.controllers = MirrorControllers(self)
        self.rule_s = rule_s or scrape_s
        self.clock.now = self.logs.now = time.time() if now is None else now
        self._next_scrape = self._next_rules = self.clock.now
        self.db_by_ns: dict[str, dict[str, dict[str, Any]]] = {self.namespace: self.db}

    # --- databases: one set of accounts per namespace the app runs in -----------------------
    def databases(self, namespace: str) -> dict[str, dict[str, Any]]:
        dbs = self.db_by_ns.get(namespace)
        if dbs is None:
            dbs = self.db_by_ns[namespace] = self.new_databases()
        return dbs

    @contextmanager
    def in_namespace(self, namespace: str | None) -> Iterator[None]:
        """Make ``namespace`` the world's namespace (fault injectors and ``db_exec`` act on it)."""
        saved = self.namespace, self.db
        if namespace:
            self.namespace, self.db = namespace, self.databases(namespace)
        try:
            yield
        finally:
            self.namespace, self.db = saved

    def db_exec(self, component: str, cmd: dict[str, Any], namespace: str | None = None) -> str:
        """Run a catalogued admin command against ``component``'s accounts in ``namespace`` (default the
        app's): the runtime faults and fixes of database roles and users."""
        with self.in_namespace(namespace):
            return super().db_exec(component, cmd)

    # --- pods -------------------------------------------------------------------------------
    def delete_pod(self, pod: dict[str, Any]) -> None:
        if self.store.journal is not None:
            # an injector restarting pods: the API deletes them and the ReplicaSet replaces them
            self.store.journal.append(("delete", pod))
            return
        super().delete_pod(pod)

    @contextmanager
    def journaled(self) -> Iterator[list[Change]]:
        """Record the store changes made inside the block (for replay through the API)."""
        changes: list[Change] = []
        self.store.journal = changes
        try:
            yield changes
        finally:
            self.store.journal = None

    # --- time -------------------------------------------------------------------------------
    def step(self, now: float) -> None:
        """One pass at wall time ``now``: kubelet, traffic, then scrape and rules when due."""
        dt = max(0.0, now - self.clock.now)
        self.clock.now = self.logs.now = now
        self.kubelet.sync()
        if dt and self.store.exists("Service", self.app.entry, self.namespace):
            self.traffic.step(dt)
        if now >= self._next_scrape:
            self._next_scrape = now + self.scrape_s
            self.tsdb.add_many(self.telemetry.scrape(), now)
            self.store.prune_events()
            if len(self.log_throttle) > 5000:
                self.log_throttle.clear()
        if now >= self._next_rules:
            self._next_rules = now + self.rule_s
            self.rules.evaluate(self.tsdb, now)


__all__ = ["Change", "MirrorStore", "MirrorWorld"]
