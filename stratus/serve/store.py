"""The intake store of ``stratus serve``: accepted incidents, their alerts, claims and timeline, in SQL.

One schema for SQLite (the default: the checkpoint file) and PostgreSQL (a DSN: shared deployments).
Everything a payload changes is written in one database transaction, so an accepted payload is whole
on disk before the 202 and a refused one leaves nothing behind.

Incidents move ``queued -> running -> done``, or ``running -> waiting`` (a plan waits for a human) and
back to ``queued`` when the answer arrives. A worker claims an incident together with its namespace:
the namespace row carries a lease (holder, expiry) so that at most one incident per namespace runs,
across every process on the database. On PostgreSQL the namespace row is read ``FOR UPDATE SKIP
LOCKED``, so two processes never wait on, nor both take, the same namespace; on SQLite ``BEGIN
IMMEDIATE`` serialises claims. A running incident whose lease expired (its process died) is claimed
again first and resumed from its checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratus.serve.payload import WebhookPayload
from stratus.state import new_incident_id

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS serve_incidents (
        id TEXT PRIMARY KEY, group_key TEXT NOT NULL, namespace TEXT NOT NULL, receiver TEXT NOT NULL,
        state TEXT NOT NULL, outcome TEXT, error TEXT, pending TEXT, resume TEXT,
        holder TEXT, lease_until DOUBLE PRECISION, runs INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION)""",
    # one open incident per alert group: a re-sent group can only update it, even from two processes
    """CREATE UNIQUE INDEX IF NOT EXISTS serve_incidents_open_group ON serve_incidents (group_key)
        WHERE state <> 'done'""",
    "CREATE INDEX IF NOT EXISTS serve_incidents_state ON serve_incidents (state, namespace, created_at)",
    """CREATE TABLE IF NOT EXISTS serve_alerts (
        incident_id TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL, alert TEXT NOT NULL,
        received INTEGER NOT NULL, updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (incident_id, fingerprint))""",
    "CREATE INDEX IF NOT EXISTS serve_alerts_fingerprint ON serve_alerts (fingerprint)",
    """CREATE TABLE IF NOT EXISTS serve_events (
        seq {serial}, incident_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS serve_events_incident ON serve_events (incident_id, seq)",
    """CREATE TABLE IF NOT EXISTS serve_namespaces (
        namespace TEXT PRIMARY KEY, holder TEXT, lease_until DOUBLE PRECISION)""",
    """CREATE TABLE IF NOT EXISTS serve_notifications (
        incident_id TEXT NOT NULL, event TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (incident_id, event))""",
]
SERIAL = {False: "INTEGER PRIMARY KEY", True: "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"}  # event order
INCIDENT_COLUMNS = ("id", "group_key", "namespace", "receiver", "state", "outcome", "error", "pending", "resume",
                    "holder", "lease_until", "runs", "created_at", "updated_at", "finished_at")
CLAIM_CANDIDATES = 20  # namespaces looked at per claim: bounded work per call
BATCH_MAX = 500  # payloads per group commit


@dataclass
class Accepted:
    """What one payload did: the incident it created or updated (None: resolved alerts of nothing open)."""

    incident_id: str | None
    created: bool
    firing: int
    resolved: int


class _Pending:
    """A payload waiting for its batch's commit."""

    def __init__(self, payload: WebhookPayload, namespace: str) -> None:
        self.payload, self.namespace = payload, namespace
        self.done = False
        self.result: Accepted | None = None
        self.error: Exception | None = None


@dataclass
class Claim:
    """An incident a worker now owns: run it (or resume it with ``resume``) and report back."""

    incident_id: str
    namespace: str
    alerts: list[dict[str, Any]]
    resume: Any
    runs: int


Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


class IntakeStore:
    """The serve tables in a SQLite file or a PostgreSQL database.

    Args:
        db: a SQLite path (or ``:memory:``) or a ``postgresql://`` DSN.
        clock: seconds since the epoch (tests pass a fake one).
    """

    def __init__(self, db: str, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self.postgres = db.startswith(("postgres://", "postgresql://"))
        self._lock = threading.Lock()
        self._batch_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Pending] = []
        if self.postgres:
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(db, min_size=1, max_size=8, kwargs={"autocommit": True}, open=True)
        else:
            path = db if db == ":memory:" else str(Path(db).expanduser())
            if db != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # an accepted payload survives a power cut
        with self._tx() as q:
            for stmt in SCHEMA:
                q(stmt.replace("{serial}", SERIAL[self.postgres]), ())

    def close(self) -> None:
        if self.postgres:
            self._pool.close()
        else:
            self._conn.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Query]:
        """One database transaction; yields ``q(sql, params) -> rows`` (SQL written with ``?``)."""
        if self.postgres:
            with self._pool.connection() as conn, conn.transaction():
                def pq(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
                    cur = conn.execute(sql.replace("?", "%s"), params)
                    return cur.fetchall() if cur.description else []
                yield pq
            return
        with self._lock:
            lite = self._conn
            lite.execute("BEGIN IMMEDIATE")  # writers queue here, not at COMMIT (also across processes)
            try:
                def sq(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
                    return lite.execute(sql, params).fetchall()
                yield sq
            except BaseException:
                lite.execute("ROLLBACK")
                raise
            lite.execute("COMMIT")

    @staticmethod
    def _event(q: Query, incident_id: str, at: float, kind: str, detail: dict[str, Any]) -> None:
        q("INSERT INTO serve_events (incident_id, at, kind, detail) VALUES (?, ?, ?, ?)",
          (incident_id, at, kind, json.dumps(detail, sort_keys=True)))

    # --- intake -------------------------------------------------------------------------------
    def accept(self, payload: WebhookPayload, default_namespace: str) -> Accepted:
        """Record one webhook payload: update the group's open incident, or open one if anything fires.

        A group with an open incident (same ``groupKey``, or an alert fingerprint already in an open
        incident) updates it; resolved alerts are recorded on it. Resolved alerts of a group with no open
        incident are recorded on its latest closed one, if any, and open nothing.

        Returns once the payload is committed. Payloads arriving together are committed together (group
        commit): whichever caller gets the batch lock writes every pending payload in one transaction,
        one savepoint each, so one durable flush serves them all and one bad payload spoils none.
        """
        item = _Pending(payload, default_namespace)
        with self._pending_lock:
            self._pending.append(item)
        with self._batch_lock:
            if not item.done:  # nobody took it yet: lead a batch (it includes this payload)
                with self._pending_lock:
                    batch, self._pending = self._pending[:BATCH_MAX], self._pending[BATCH_MAX:]
                self._commit(batch)
        if item.error is not None:
            raise item.error
        assert item.result is not None
        return item.result

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self._tx() as q:
                for n, item in enumerate(batch):
                    for attempt in range(2):  # another process may open the same group first: then update it
                        q(f"SAVEPOINT p{n}", ())
                        try:
                            item.result = self._accept(q, item.payload, item.namespace)
                        except Exception as exc:
                            q(f"ROLLBACK TO SAVEPOINT p{n}", ())
                            item.error = exc
                            if attempt or not _unique_violation(exc):
                                break
                            item.error = None
                        else:
                            break
                        finally:
                            q(f"RELEASE SAVEPOINT p{n}", ())
        except Exception as exc:  # the commit itself failed: nothing of the batch is stored
            for item in batch:
                item.result, item.error = None, item.error or exc
        for item in batch:
            item.done = True

    def _accept(self, q: Query, payload: WebhookPayload, default_namespace: str) -> Accepted:
        now = self.clock()
        fps = [a.fingerprint for a in payload.alerts]
        firing = sum(a.status == "firing" for a in payload.alerts)
        rows = q("SELECT id FROM serve_incidents WHERE group_key = ? AND state <> 'done'", (payload.groupKey,))
        if not rows:
            marks = ", ".join("?" for _ in fps)
            rows = q(f"SELECT i.id FROM serve_alerts a JOIN serve_incidents i ON i.id = a.incident_id "
                     f"WHERE a.fingerprint IN ({marks}) AND i.state <> 'done' ORDER BY i.created_at LIMIT 1",
                     tuple(fps))
        created = False
        if rows:
            incident_id = rows[0][0]
        elif firing:
            incident_id, created = new_incident_id(), True
            ns = payload.namespace(default_namespace)
            q("INSERT INTO serve_incidents (id, group_key, namespace, receiver, state, created_at, updated_at) "
              "VALUES (?, ?, ?, ?, 'queued', ?, ?)", (incident_id, payload.groupKey, ns, payload.receiver, now, now))
            q("INSERT INTO serve_namespaces (namespace) VALUES (?) ON CONFLICT (namespace) DO NOTHING", (ns,))
        else:
            rows = q("SELECT id FROM serve_incidents WHERE group_key = ? ORDER BY created_at DESC LIMIT 1",
                     (payload.groupKey,))
            if not rows:
                return Accepted(None, False, 0, len(fps))
            incident_id = rows[0][0]
        for a in payload.alerts:
            body = json.dumps(a.model_dump(), sort_keys=True)
            q("INSERT INTO serve_alerts (incident_id, fingerprint, status, alert, received, updated_at) "
              "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (incident_id, fingerprint) DO UPDATE SET "
              "status = excluded.status, alert = excluded.alert, received = serve_alerts.received + 1, "
              "updated_at = excluded.updated_at", (incident_id, a.fingerprint, a.status, body, now))
        q("UPDATE serve_incidents SET updated_at = ? WHERE id = ?", (now, incident_id))
        self._event(q, incident_id, now, "created" if created else "updated",
                    {"group_key": payload.groupKey, "firing": firing, "resolved": len(fps) - firing,
                     "alerts": sorted({a.name for a in payload.alerts})})
        return Accepted(incident_id, created, firing, len(fps) - firing)

    # --- workers ------------------------------------------------------------------------------
    def claim(self, holder: str, lease_s: float) -> Claim | None:
        """Take the oldest runnable incident whose namespace no live lease holds, with that namespace.

        Runnable: queued, or running under an expired lease (its worker died: resume it first)."""
        now = self.clock()
        with self._tx() as q:
            candidates = q("SELECT namespace, MIN(created_at) FROM serve_incidents WHERE state = 'queued' OR "
                           "(state = 'running' AND lease_until < ?) GROUP BY namespace ORDER BY 2 LIMIT ?",
                           (now, CLAIM_CANDIDATES))
            for ns, _ in candidates:
                lock = " FOR UPDATE SKIP LOCKED" if self.postgres else ""
                row = q(f"SELECT holder, lease_until FROM serve_namespaces WHERE namespace = ?{lock}", (ns,))
                if not row or (row[0][0] not in (None, holder) and (row[0][1] or 0) >= now):
                    continue  # another process holds the namespace (or is claiming it right now)
                pick = q("SELECT id, resume, runs FROM serve_incidents WHERE namespace = ? AND (state = 'queued' "
                         "OR (state = 'running' AND lease_until < ?)) ORDER BY CASE state WHEN 'running' THEN 0 "
                         "ELSE 1 END, created_at LIMIT 1", (ns, now))
                if not pick:
                    continue
                incident_id, resume, runs = pick[0]
                q("UPDATE serve_namespaces SET holder = ?, lease_until = ? WHERE namespace = ?",
                  (holder, now + lease_s, ns))
                q("UPDATE serve_incidents SET state = 'running', holder = ?, lease_until = ?, runs = runs + 1, "
                  "resume = NULL, pending = NULL, updated_at = ? WHERE id = ?",
                  (holder, now + lease_s, now, incident_id))
                self._event(q, incident_id, now, "claimed", {"holder": holder, "run": runs + 1})
                alerts = [json.loads(r[0]) for r in q(
                    "SELECT alert FROM serve_alerts WHERE incident_id = ? ORDER BY fingerprint", (incident_id,))]
                return Claim(incident_id, ns, alerts, json.loads(resume) if resume else None, runs + 1)
        return None

    def renew(self, claim: Claim, holder: str, lease_s: float) -> bool:
        """Extend the claim's leases; False when this holder lost them (it must not write any more)."""
        now = self.clock()
        with self._tx() as q:
            rows = q("UPDATE serve_incidents SET lease_until = ? WHERE id = ? AND holder = ? AND state = 'running' "
                     "RETURNING id", (now + lease_s, claim.incident_id, holder))
            q("UPDATE serve_namespaces SET lease_until = ? WHERE namespace = ? AND holder = ?",
              (now + lease_s, claim.namespace, holder))
        return bool(rows)

    def _release(self, q: Query, claim: Claim, holder: str) -> None:
        q("UPDATE serve_namespaces SET holder = NULL, lease_until = NULL WHERE namespace = ? AND holder = ?",
          (claim.namespace, holder))

    def finish(self, claim: Claim, holder: str, outcome: str, detail: dict[str, Any],
               error: str | None = None) -> bool:
        """Close the incident with its outcome and free the namespace; False if the claim was lost."""
        now = self.clock()
        with self._tx() as q:
            rows = q("UPDATE serve_incidents SET state = 'done', outcome = ?, error = ?, holder = NULL, "
                     "lease_until = NULL, finished_at = ?, updated_at = ? WHERE id = ? AND holder = ? "
                     "AND state = 'running' RETURNING id", (outcome, error, now, now, claim.incident_id, holder))
            self._release(q, claim, holder)
            if rows:
                self._event(q, claim.incident_id, now, "finished", {"outcome": outcome, **detail})
        return bool(rows)

    def wait_for_approval(self, claim: Claim, holder: str, pending: Any) -> bool:
        """Park the incident until a human answers; the namespace is free meanwhile (as the graph's lock)."""
        now = self.clock()
        with self._tx() as q:
            rows = q("UPDATE serve_incidents SET state = 'waiting', pending = ?, holder = NULL, lease_until = NULL, "
                     "updated_at = ? WHERE id = ? AND holder = ? AND state = 'running' RETURNING id",
                     (json.dumps(pending), now, claim.incident_id, holder))
            self._release(q, claim, holder)
            if rows:
                self._event(q, claim.incident_id, now, "waiting", {"transaction": (pending or {}).get("transaction")})
        return bool(rows)

    def answer(self, incident_id: str, decision: Any) -> bool:
        """Queue a waiting incident again with the human's answer; False when it is not waiting."""
        now = self.clock()
        with self._tx() as q:
            rows = q("UPDATE serve_incidents SET state = 'queued', resume = ?, updated_at = ? WHERE id = ? "
                     "AND state = 'waiting' RETURNING id", (json.dumps(decision), now, incident_id))
            if rows:
                self._event(q, incident_id, now, "answered", {"decision": decision})
        return bool(rows)

    def first_notice(self, incident_id: str, event: str) -> bool:
        """Record that ``event`` of the incident is being notified; False when it already was."""
        with self._tx() as q:
            rows = q("INSERT INTO serve_notifications (incident_id, event, at) VALUES (?, ?, ?) "
                     "ON CONFLICT (incident_id, event) DO NOTHING RETURNING incident_id",
                     (incident_id, event, self.clock()))
        return bool(rows)

    # --- reads --------------------------------------------------------------------------------
    def queue_depth(self) -> dict[str, int]:
        with self._tx() as q:
            rows = q("SELECT state, COUNT(*) FROM serve_incidents WHERE state <> 'done' GROUP BY state", ())
        return {"queued": 0, "running": 0, "waiting": 0, **{s: int(n) for s, n in rows}}

    def incidents(self, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        cols = ", ".join(INCIDENT_COLUMNS)
        with self._tx() as q:
            if state:
                rows = q(f"SELECT {cols} FROM serve_incidents WHERE state = ? ORDER BY created_at DESC LIMIT ?",
                         (state, limit))
            else:
                rows = q(f"SELECT {cols} FROM serve_incidents ORDER BY created_at DESC LIMIT ?", (limit,))
        return [_row(r) for r in rows]

    def incident(self, incident_id: str, max_events: int = 500) -> dict[str, Any] | None:
        """The incident's row with its alerts and intake timeline (the newest ``max_events`` events)."""
        with self._tx() as q:
            rows = q(f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM serve_incidents WHERE id = ?", (incident_id,))
            if not rows:
                return None
            alerts = q("SELECT fingerprint, status, alert, received, updated_at FROM serve_alerts "
                       "WHERE incident_id = ? ORDER BY fingerprint", (incident_id,))
            events = q("SELECT at, kind, detail FROM serve_events WHERE incident_id = ? ORDER BY seq DESC LIMIT ?",
                       (incident_id, max_events))
        out = _row(rows[0])
        out["alerts"] = [{**json.loads(a), "status": s, "fingerprint": fp, "received": n, "updated_at": t}
                         for fp, s, a, n, t in alerts]
        out["events"] = [{"at": at, "kind": k, **json.loads(d)} for at, k, d in reversed(events)]
        return out


def _row(r: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(INCIDENT_COLUMNS, r))
    for key in ("pending", "resume"):
        out[key] = json.loads(out[key]) if out[key] else None
    return out


def _unique_violation(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return True
    import psycopg

    return isinstance(exc, psycopg.errors.UniqueViolation)
