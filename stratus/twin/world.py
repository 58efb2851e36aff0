"""The twin's world: one namespace of one app on a simulated cluster, advanced tick by tick.

Order of a tick: controllers (deployments, replicasets, scheduler) -> kubelet -> statuses and endpoints
-> traffic. Prometheus scrapes and evaluates rules every ``scrape_s``. Deterministic for a seed.
"""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path
from typing import Any

from stratus.twin.apps import App, load_app
from stratus.twin.controllers import Controllers
from stratus.twin.kubelet import Kubelet
from stratus.twin.network import Network
from stratus.twin.prom.rules import RuleEvaluator, load_rules
from stratus.twin.store import Clock, Store
from stratus.twin.telemetry import Telemetry
from stratus.twin.traffic import Traffic
from stratus.twin.tsdb import TSDB

DATA = Path(__file__).parent / "data"
LOG_LINES_PER_CONTAINER = 400
RETENTION_S = 1800.0


class Logs:
    """Container logs, bounded per container like a node's log rotation.

    Like the kubelet, it keeps the current container instance's log and the previous one's
    (``kubectl logs --previous``); a restart rotates current into previous.
    """

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str, str], deque[tuple[float, str]]] = {}
        self.previous: dict[tuple[str, str, str], deque[tuple[float, str]]] = {}
        self.now = 0.0

    def _buf(self, pod: dict[str, Any], container: str) -> deque[tuple[float, str]]:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        buf = self.lines.get(key)
        if buf is None:
            buf = self.lines[key] = deque(maxlen=LOG_LINES_PER_CONTAINER)
        return buf

    def start(self, pod: dict[str, Any], container: str, lines: list[str]) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        if key in self.lines:
            self.previous[key] = self.lines.pop(key)
        self.write(pod, container, lines)

    def write(self, pod: dict[str, Any], container: str, lines: list[str]) -> None:
        buf = self._buf(pod, container)
        for line in lines:
            buf.append((self.now, line))

    def drop_pod(self, namespace: str, name: str) -> None:
        for store in (self.lines, self.previous):
            for key in [k for k in store if k[0] == namespace and k[1] == name]:
                del store[key]

    def read(self, namespace: str, pod: str, container: str | None,
             previous: bool = False) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        for (ns, p, c), buf in (self.previous if previous else self.lines).items():
            if ns == namespace and p == pod and (container is None or c == container):
                out.extend(buf)
        return out


class World:
    def __init__(self, app: str | App = "hotel-reservation", seed: int = 0, namespace: str | None = None,
                 tick_s: float = 5.0, scrape_s: float = 15.0, rules: str = "benchmark", empty: bool = False) -> None:
        """A world of ``app`` in ``namespace``, booted; ``empty`` starts with no objects and no boot (the
        mirror of a real cluster fills it, see ``twin.mirror``)."""
        self.app = load_app(app) if isinstance(app, str) else app
        self.namespace = namespace or self.app.namespace
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = Clock(tick_s)
        self.store = Store(self.clock, self.rng)
        self.network = Network(self)
        self.kubelet = Kubelet(self)
        self.controllers = Controllers(self)
        self.logs = Logs()
        self.telemetry = Telemetry(self)
        self.traffic = Traffic(self)
        self.tsdb = TSDB(retention_s=RETENTION_S)
        self.rules = RuleEvaluator(load_rules(DATA / f"rules-{rules}.yaml"),
                                   external_labels={"prometheus": "monitoring/k8s"})
        self.scrape_s = scrape_s
        self._next_scrape = self.clock.now
        self.ip_counter = 0
        self.chaos_started: dict[str, float] = {}
        self.rollout_started: dict[str, float] = {}
        self.sched_last_event: dict[str, float] = {}
        self.log_throttle: dict[tuple[str, str], float] = {}
        self.noise: list[Any] = []  # distractor hooks (bench noise); each is called every tick
        self.db: dict[str, dict[str, Any]] = {}
        self._init_databases()
        if empty:
            return
        for m in self.app.manifests(self.namespace):
            self.store.create(m)
        self._boot()

    def _boot(self, seconds: float = 240.0) -> None:
        """Bring the app up before the observed timeline starts (start-up ordering noise is not an incident)."""
        start = self.clock.now
        self.clock.now -= seconds
        while self.clock.now < start:
            self.clock.now += self.clock.tick_s
            self.logs.now = self.clock.now
            self.controllers.sync()
            self.kubelet.sync()
            self.controllers.after_kubelet()
        self.store._events.clear()
        self._next_scrape = self.clock.now

    # --- databases (state lives on the PV, so it survives pod restarts) --------------------
    def _init_databases(self) -> None:
        self.db = self.new_databases()

    def new_databases(self) -> dict[str, dict[str, Any]]:
        """The app's database components with the accounts its init scripts create."""
        out: dict[str, dict[str, Any]] = {}
        for comp, spec in self.app.components.items():
            if self.app.kind_of(comp) != "mongodb":
                continue
            users = {}
            for name, u in self.app.db_users.items():
                roles = [dict(r) for r in u.get("roles", [])]
                if u.get("grant_all_app_dbs"):
                    roles += [{"role": u["grant_all_app_dbs"], "db": db} for db in spec.get("databases", [])]
                users[name] = {"pwd": u["pwd"], "roles": roles}
            out[comp] = {"auth": bool(spec.get("auth")), "users": users,
                         "databases": list(spec.get("databases", []))}
        return out

    def databases(self, namespace: str) -> dict[str, dict[str, Any]]:
        """The database components' accounts as seen from ``namespace`` (one app, one set here)."""
        return self.db

    def db_component_for(self, address: str, namespace: str) -> str | None:
        host = address.rpartition(":")[0].split(".")[0]
        return host if host in self.databases(namespace) else None

    def db_check(self, address: str, namespace: str, database: str, startup: bool) -> tuple[bool, str]:
        """Authenticate as the app's credentials and check readWrite on ``database``."""
        comp = self.db_component_for(address, namespace)
        dbs = self.databases(namespace)
        if comp is None or not dbs[comp]["auth"]:
            return True, ""
        creds = self.app.app_credentials
        user = dbs[comp]["users"].get(creds.get("user", ""))
        if user is None or user["pwd"] != creds.get("pwd"):
            return False, "auth"
        if any(r["role"] in ("readWrite", "dbOwner", "root") and r["db"] in (database, "admin")
               and (r["db"] == database or r["role"] == "root") for r in user["roles"]):
            return True, ""
        return False, "role"

    def db_exec(self, component: str, cmd: dict[str, Any], namespace: str | None = None) -> str:
        """Run a catalogued admin command against a database component's accounts (in ``namespace``'s
        set of databases, default the world's own)."""
        db = (self.databases(namespace) if namespace else self.db).get(component)
        if db is None:
            raise ValueError(f"{component} is not a database this twin models")
        op, users = cmd.get("op"), db["users"]
        user = cmd.get("user", "")
        roles = [{"role": r["role"], "db": r["db"]} for r in cmd.get("roles", [])]
        if op == "grant_role":
            if user not in users:
                raise ValueError(f"UserNotFound: Could not find user \"{user}\" for db \"admin\"")
            for r in roles:
                if r not in users[user]["roles"]:
                    users[user]["roles"].append(r)
        elif op == "revoke_role":
            if user not in users:
                raise ValueError(f"UserNotFound: Could not find user \"{user}\" for db \"admin\"")
            users[user]["roles"] = [r for r in users[user]["roles"] if r not in roles]
        elif op == "create_user":
            if user in users:
                raise ValueError(f'User "{user}@admin" already exists')
            users[user] = {"pwd": cmd.get("pwd", ""), "roles": roles}
        elif op == "drop_user":
            if users.pop(user, None) is None:
                raise ValueError(f"UserNotFound: Could not find user \"{user}\" for db \"admin\"")
        else:
            raise ValueError(f"unsupported database command {op!r}")
        return "{ ok: 1 }"

    # --- pods -------------------------------------------------------------------------------
    def delete_pod(self, pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        if self.store.exists("Pod", m["name"], m["namespace"]):
            self.store.delete("Pod", m["name"], m["namespace"])
            self.store.event(pod, "Normal", "Killing", f"Stopping container {pod['spec']['containers'][0]['name']}",
                             "kubelet")
        self.kubelet.forget(pod)
        self.logs.drop_pod(m["namespace"], m["name"])
        self.telemetry.forget_pod(m["name"])

    # --- time -------------------------------------------------------------------------------
    def tick(self) -> None:
        self.clock.now += self.clock.tick_s
        self.logs.now = self.clock.now
        self.controllers.sync()
        self.kubelet.sync()
        self.controllers.after_kubelet()
        self.traffic.step(self.clock.tick_s)
        for hook in self.noise:
            hook(self)
        if self.clock.now >= self._next_scrape:
            self._next_scrape = self.clock.now + self.scrape_s
            self.tsdb.add_many(self.telemetry.scrape(), self.clock.now)
            self.rules.evaluate(self.tsdb, self.clock.now)
            self.store.prune_events()
            if len(self.log_throttle) > 5000:
                self.log_throttle.clear()

    def advance(self, seconds: float) -> None:
        end = self.clock.now + seconds
        while self.clock.now + 1e-9 < end:
            self.tick()

    def warm_up(self, seconds: float = 300.0) -> None:
        self.advance(seconds)

    # --- convenience ------------------------------------------------------------------------
    def firing(self) -> list[dict[str, Any]]:
        return self.rules.alertmanager_alerts()
