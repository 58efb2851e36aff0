"""Recording webhook payloads: a batch of payloads written in one transaction, with the same result as
writing them one after another.

Each payload updates its group's open incident (same ``groupKey``, or else the oldest open incident that
already holds one of its alert fingerprints), or opens one if anything fires; resolved alerts of a group
with nothing open are recorded on its latest closed incident, if any, and open nothing.

``record_batch`` is the fast path: a few reads for the whole batch, the decisions made in memory in
arrival order, then one pipelined statement per table. ``record_each`` is the careful path the caller
falls back to when the fast one fails (a payload the database refuses, another process opening the same
group at the same moment): one savepoint per payload, so one bad payload spoils none of the others and
leaves nothing of itself behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from stratus.serve.payload import WebhookPayload
from stratus.serve.store.db import Tx
from stratus.state import new_incident_id

IN_CHUNK = 500  # values per IN (...) list: far below SQLite's and PostgreSQL's parameter limits


@dataclass
class Accepted:
    """What one payload did: the incident it created or updated (None: resolved alerts of nothing open)."""

    incident_id: str | None
    created: bool
    firing: int
    resolved: int


@dataclass
class _Writes:
    """Rows the batch writes, per table, in arrival order."""

    incidents: list[tuple[Any, ...]] = field(default_factory=list)
    namespaces: dict[str, None] = field(default_factory=dict)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    touched: dict[str, None] = field(default_factory=dict)
    events: list[tuple[Any, ...]] = field(default_factory=list)


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i:i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values)


def _event_detail(payload: WebhookPayload, firing: int) -> str:
    return json.dumps({"group_key": payload.groupKey, "firing": firing, "resolved": len(payload.alerts) - firing,
                       "alerts": sorted({a.name for a in payload.alerts})}, sort_keys=True)


def _bodies(payload: WebhookPayload) -> list[str]:
    return [json.dumps(a.model_dump(), sort_keys=True) for a in payload.alerts]


def record_batch(q: Tx, items: list[tuple[WebhookPayload, str]], now: float) -> list[Accepted]:
    """Record ``(payload, default namespace)`` pairs in arrival order; raises if any of them fails."""
    bodies = [_bodies(p) for p, _ in items]  # before any write: a payload that cannot be encoded fails here
    keys = sorted({p.groupKey for p, _ in items})
    open_group: dict[str, tuple[float, str]] = {}  # group key -> (created_at, incident) of its open incident
    for chunk in _chunks(keys):
        for key, incident_id, created_at in q(
                f"SELECT group_key, id, created_at FROM serve_incidents WHERE state <> 'done' "
                f"AND group_key IN ({_marks(chunk)})", chunk):
            open_group[key] = (created_at, incident_id)
    fps = sorted({a.fingerprint for p, _ in items if p.groupKey not in open_group for a in p.alerts})
    open_fp: dict[str, tuple[float, str]] = {}  # fingerprint -> oldest open incident holding it
    for chunk in _chunks(fps):
        for fp, incident_id, created_at in q(
                f"SELECT a.fingerprint, i.id, i.created_at FROM serve_alerts a JOIN serve_incidents i "
                f"ON i.id = a.incident_id WHERE i.state <> 'done' AND a.fingerprint IN ({_marks(chunk)})", chunk):
            open_fp[fp] = min(open_fp.get(fp, (created_at, incident_id)), (created_at, incident_id))
    out, w = [], _Writes()
    for (payload, default_ns), encoded in zip(items, bodies, strict=True):
        firing = sum(a.status == "firing" for a in payload.alerts)
        created = False
        hit = open_group.get(payload.groupKey) or min(
            (open_fp[a.fingerprint] for a in payload.alerts if a.fingerprint in open_fp), default=None)
        if hit is None and firing:
            hit, created = (now, new_incident_id()), True
            ns = payload.namespace(default_ns)
            w.incidents.append((hit[1], payload.groupKey, ns, payload.receiver, now, now))
            w.namespaces[ns] = None
            open_group[payload.groupKey] = hit
        if hit is None:
            closed = q("SELECT id FROM serve_incidents WHERE group_key = ? ORDER BY created_at DESC LIMIT 1",
                       (payload.groupKey,))
            if not closed:
                out.append(Accepted(None, False, 0, len(payload.alerts)))
                continue
            incident_id = closed[0][0]
        else:
            incident_id = hit[1]
            for a in payload.alerts:
                open_fp[a.fingerprint] = min(open_fp.get(a.fingerprint, hit), hit)
        w.alerts.extend((incident_id, a.fingerprint, a.status, body, now) for a, body in zip(payload.alerts, encoded))
        w.touched[incident_id] = None
        w.events.append((incident_id, now, "created" if created else "updated", _event_detail(payload, firing)))
        out.append(Accepted(incident_id, created, firing, len(payload.alerts) - firing))
    _write(q, w, now)
    return out


def _write(q: Tx, w: _Writes, now: float) -> None:
    q.many("INSERT INTO serve_incidents (id, group_key, namespace, receiver, state, created_at, updated_at) "
           "VALUES (?, ?, ?, ?, 'queued', ?, ?)", w.incidents)
    q.many("INSERT INTO serve_namespaces (namespace) VALUES (?) ON CONFLICT (namespace) DO NOTHING",
           [(ns,) for ns in w.namespaces])
    # row by row, not one multi-row INSERT: a fingerprint sent twice in a batch counts twice in ``received``
    q.many("INSERT INTO serve_alerts (incident_id, fingerprint, status, alert, received, updated_at) "
           "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (incident_id, fingerprint) DO UPDATE SET "
           "status = excluded.status, alert = excluded.alert, received = serve_alerts.received + 1, "
           "updated_at = excluded.updated_at", w.alerts)
    q.many("UPDATE serve_incidents SET updated_at = ? WHERE id = ?", [(now, i) for i in w.touched])
    q.many("INSERT INTO serve_events (incident_id, at, kind, detail) VALUES (?, ?, ?, ?)", w.events)


def record_each(q: Tx, items: list[tuple[WebhookPayload, str]], now: float,
                unique_violation: Any) -> list[Accepted | Exception]:
    """Record each payload under its own savepoint; a payload that fails leaves nothing and yields its error.

    A unique violation means another process opened the same group meanwhile: that payload is tried once
    more, and then finds and updates that incident.
    """
    out: list[Accepted | Exception] = []
    for n, item in enumerate(items):
        result: Accepted | Exception = RuntimeError("not recorded")
        for attempt in range(2):
            q(f"SAVEPOINT p{n}")
            try:
                result = record_batch(q, [item], now)[0]
            except Exception as exc:
                q(f"ROLLBACK TO SAVEPOINT p{n}")
                result = exc
                if attempt or not unique_violation(exc):
                    break
            else:
                break
            finally:
                q(f"RELEASE SAVEPOINT p{n}")
        out.append(result)
    return out
