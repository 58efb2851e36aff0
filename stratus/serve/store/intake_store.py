"""The intake store of ``stratus serve``: accepted incidents, their alerts, claims and timeline, in SQL.

One schema for SQLite (the default: the checkpoint file) and PostgreSQL (a DSN: shared deployments), in
``db``. Payloads are written by one writer thread in groups (``writer``, ``intake``): everything a payload
changes is in one transaction that has committed before its caller hears back, so an accepted payload is
whole on disk before the 202 and a refused one leaves nothing behind.

Incidents move ``queued -> running -> done``, or ``running -> waiting`` (a plan waits for a human) and
back to ``queued`` when the answer arrives. A worker claims an incident together with its namespace:
the namespace row carries a lease (holder, expiry) so that at most one incident per namespace runs,
across every process on the database. On PostgreSQL the namespace row is read ``FOR UPDATE SKIP
LOCKED``, so two processes never wait on, nor both take, the same namespace; on SQLite ``BEGIN
IMMEDIATE`` serialises claims. A running incident whose lease expired (its process died) is claimed
again first and resumed from its checkpoint.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from stratus.serve.payload import WebhookPayload
from stratus.serve.store.db import Database, Tx
from stratus.serve.store.intake import Accepted, record_batch, record_each
from stratus.serve.store.writer import GroupWriter

INCIDENT_COLUMNS = ("id", "group_key", "namespace", "receiver", "state", "outcome", "error", "pending", "resume",
                    "holder", "lease_until", "runs", "created_at", "updated_at", "finished_at")
CLAIM_CANDIDATES = 20  # namespaces looked at per claim: bounded work per call


@dataclass
class Claim:
    """An incident a worker now owns: run it (or resume it with ``resume``) and report back."""

    incident_id: str
    namespace: str
    alerts: list[dict[str, Any]]
    resume: Any
    runs: int


class IntakeStore:
    """The serve tables in a SQLite file or a PostgreSQL database.

    Args:
        db: a SQLite path (or ``:memory:``) or a ``postgresql://`` DSN.
        clock: seconds since the epoch (tests pass a fake one).
    """

    def __init__(self, db: str, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self._db = Database(db)
        self.postgres = self._db.postgres
        self._tx = self._db.tx
        self._writer: GroupWriter | None = None
        self._writer_lock = threading.Lock()

    def close(self) -> None:
        """Commit what is queued, then close the database; later payloads are refused."""
        with self._writer_lock:
            self._writer = self._writer or GroupWriter(self.commit_group, start=False)
        self._writer.close()
        self._db.close()

    @staticmethod
    def _event(q: Tx, incident_id: str, at: float, kind: str, detail: dict[str, Any]) -> None:
        q("INSERT INTO serve_events (incident_id, at, kind, detail) VALUES (?, ?, ?, ?)",
          (incident_id, at, kind, json.dumps(detail, sort_keys=True)))

    # --- intake -------------------------------------------------------------------------------
    def submit(self, payload: WebhookPayload, default_namespace: str) -> Future[Accepted]:
        """Hand a payload to the writer thread; the future resolves once its transaction has committed.

        The group's open incident (same ``groupKey``, or one already holding an alert fingerprint) is
        updated, or one is opened if anything fires (see ``intake``). The future holds the error instead
        when the database refused the payload: then nothing of it is stored.
        """
        with self._writer_lock:  # started on first use: stores that only claim or read need no thread
            if self._writer is None:
                self._writer = GroupWriter(self.commit_group)
        return self._writer.submit(payload, default_namespace)

    def accept(self, payload: WebhookPayload, default_namespace: str) -> Accepted:
        """``submit`` and wait for the commit (for callers on a thread of their own)."""
        return self.submit(payload, default_namespace).result()

    def commit_group(self, items: list[tuple[WebhookPayload, str]]) -> list[Accepted | Exception]:
        """Write a group in one transaction; if that fails, write it again one savepoint per payload."""
        try:
            with self._tx(pipelined=True) as q:
                return list(record_batch(q, items, self.clock()))
        except Exception:
            with self._tx() as q:
                return record_each(q, items, self.clock(), _unique_violation)

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

    def _release(self, q: Tx, claim: Claim, holder: str) -> None:
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
