"""The database under the intake store: one SQLite file or one PostgreSQL database, the serve schema, and
transactions that take SQL written with ``?`` placeholders on either.

SQLite runs in WAL mode with ``synchronous=FULL``: a commit returns once the WAL is flushed to disk, so an
accepted payload survives a process kill (the OS holds the written pages) and a power cut (they are on
disk). Checkpoints (copying the WAL back into the database file, with its own flush) are taken off the
commit path: the committing connection never checkpoints; a background thread does, on its own connection,
without blocking writers, so no intake waits behind a checkpoint.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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
    "CREATE INDEX IF NOT EXISTS serve_incidents_group ON serve_incidents (group_key, created_at)",
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
CHECKPOINT_EVERY_S = 1.0
POOL_MAX = 8


class Tx:
    """One open transaction: ``tx(sql, params) -> rows`` and ``tx.many(sql, rows)``, SQL written with ``?``."""

    def __init__(self, conn: Any, postgres: bool, pipeline: Any = None) -> None:
        self._conn, self._postgres, self._pipeline = conn, postgres, pipeline

    def __call__(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._postgres:
            cur = self._conn.execute(sql.replace("?", "%s"), params)
            if self._pipeline is not None:  # the answer is only known once what is queued has been sent
                self._pipeline.sync()
            return cur.fetchall() if cur.description else []
        return list(self._conn.execute(sql, params).fetchall())

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement over many parameter rows (PostgreSQL: pipelined; in a ``pipelined`` transaction
        nothing is sent until the next read or the commit)."""
        if not rows:
            return
        if self._postgres:
            with self._conn.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)
        else:
            self._conn.executemany(sql, rows)


class Database:
    """A SQLite path (or ``:memory:``) or a ``postgresql://`` DSN, schema created on open."""

    def __init__(self, db: str) -> None:
        self.postgres = db.startswith(("postgres://", "postgresql://"))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if self.postgres:
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(db, min_size=1, max_size=POOL_MAX, kwargs={"autocommit": True}, open=True)
        else:
            self.path = db if db == ":memory:" else str(Path(db).expanduser())
            if db != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # an accepted payload survives a power cut
            if db != ":memory:":
                self._conn.execute("PRAGMA wal_autocheckpoint=0")  # see _checkpoint: not on the commit path
                self._checkpointer = threading.Thread(target=self._checkpoint, name="stratus-store-checkpoint",
                                                      daemon=True)
        with self.tx() as q:
            for stmt in SCHEMA:
                q(stmt.replace("{serial}", SERIAL[self.postgres]))
        if self._checkpointer is not None:
            self._checkpointer.start()

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(30)
        if self.postgres:
            self._pool.close()
        else:
            self._conn.close()

    @contextlib.contextmanager
    def tx(self, pipelined: bool = False) -> Iterator[Tx]:
        """One database transaction, committed when the block ends, rolled back when it raises.

        ``pipelined`` (PostgreSQL): statements travel together, waiting only where a read needs its
        answer; BEGIN goes with the first read, the writes with COMMIT. An error surfaces at the next
        read or at the commit, so use it only where any error means redoing the whole transaction.
        """
        if self.postgres:
            with self._pool.connection() as conn:
                with conn.pipeline() if pipelined else contextlib.nullcontext() as pipe, conn.transaction():
                    yield Tx(conn, True, pipe)
            return
        with self._lock:
            lite = self._conn
            lite.execute("BEGIN IMMEDIATE")  # writers queue here, not at COMMIT (also across processes)
            try:
                yield Tx(lite, False)
            except BaseException:
                lite.execute("ROLLBACK")
                raise
            lite.execute("COMMIT")

    def _checkpoint(self) -> None:
        """Copy the WAL into the database file every second, beside the writers instead of inside a commit.

        PASSIVE never waits for (nor blocks) a writer; what it cannot copy now it copies next time. A
        process killed between checkpoints loses nothing: committed pages are in the WAL, which the next
        open replays.
        """
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA synchronous=FULL")
            while not self._stop.wait(CHECKPOINT_EVERY_S):
                with contextlib.suppress(sqlite3.OperationalError):  # busy: try again next time
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()
