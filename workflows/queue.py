"""A durable job queue in SQLite (WAL), shared by the watch folder and batch runs.

Every input version (see ``identity.FileKey``) gets exactly one row, so it is processed once even across
restarts. States::

    queued ──claim──► running ──► done
       ▲                 │  └───► failed          (permanent error, or attempts used up)
       └── retry/requeue ┘                        (transient error after a back-off; crash; SIGTERM)

A running job carries a lease (``lease_until``) that its worker renews by heartbeat; a job whose lease ran out
(its worker was killed, even with ``kill -9``) is requeued by ``recover``. Each connection is per thread and
every state change is one short ``BEGIN IMMEDIATE`` transaction, so several worker threads (or processes) can share
the file. WAL needs a local file system: keep the state folder off NFS/SMB (``--state``).
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from audiostory_core.errors import DubkitError
from workflows.identity import FileKey

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    input       TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    digest      TEXT NOT NULL DEFAULT '',
    output      TEXT NOT NULL,
    options     TEXT NOT NULL DEFAULT '{}',
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    not_before  REAL NOT NULL DEFAULT 0,
    worker      TEXT,
    lease_until REAL,
    created     REAL NOT NULL,
    started     REAL,
    finished    REAL,
    seconds     REAL,
    duration    REAL,
    backends    TEXT,
    error       TEXT,
    dispose_to  TEXT,          -- where the input must be moved once the job ends (move-done / failed folder)
    disposed    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (input, size, mtime_ns, digest)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, not_before, id);
"""


@dataclass
class Job:
    """One row of the queue."""

    id: int
    input: Path
    size: int
    mtime_ns: int
    digest: str
    output: Path
    options: dict[str, Any]
    state: str
    attempts: int
    not_before: float
    worker: str | None
    lease_until: float | None
    created: float
    started: float | None
    finished: float | None
    seconds: float | None
    duration: float | None
    backends: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    dispose_to: Path | None = None
    disposed: bool = False

    @property
    def key(self) -> FileKey:
        return FileKey(str(self.input), self.size, self.mtime_ns, self.digest)

    @classmethod
    def _from_row(cls, r: sqlite3.Row) -> "Job":
        return cls(
            id=r["id"], input=Path(r["input"]), size=r["size"], mtime_ns=r["mtime_ns"], digest=r["digest"],
            output=Path(r["output"]), options=json.loads(r["options"]), state=r["state"], attempts=r["attempts"],
            not_before=r["not_before"], worker=r["worker"], lease_until=r["lease_until"], created=r["created"],
            started=r["started"], finished=r["finished"], seconds=r["seconds"], duration=r["duration"],
            backends=json.loads(r["backends"] or "{}"), error=r["error"],
            dispose_to=Path(r["dispose_to"]) if r["dispose_to"] else None, disposed=bool(r["disposed"]),
        )


class QueueDamaged(DubkitError):
    """The queue file is not a readable SQLite database (overwritten, truncated, another program's file)."""


class JobQueue:
    """The queue file ``path`` (created on first use). Safe to use from several threads."""

    def __init__(self, path: Path | str, *, timeout: float = 30.0, readonly: bool = False):
        """``readonly``: for listing (``dubkit jobs``) while a watcher owns the file; nothing is written."""
        self.path = Path(path)
        self._timeout = timeout
        self._readonly = readonly
        self._local = threading.local()
        try:
            if readonly:
                self._conn().execute("PRAGMA schema_version").fetchone()  # reads the header: a damaged file fails here
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(_SCHEMA)
            with self._tx() as db:
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('queue_id', ?)", (uuid.uuid4().hex[:12],))
        except sqlite3.DatabaseError as e:
            self.close()
            raise QueueDamaged(
                f"{self.path}: the job queue is damaged ({e}) — move it aside (the next run starts a new queue and "
                "redoes the jobs it held) or restore it from a backup") from None

    # -- connection handling ------------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._readonly:
                conn = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro", uri=True, timeout=self._timeout,
                                       isolation_level=None)
                conn.row_factory = sqlite3.Row
                self._local.conn = conn
                return conn
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a committed state survives power loss, not only kill -9
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so two writers never deadlock on upgrade."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @property
    def queue_id(self) -> str:
        """A short id unique to this queue file (names its staging folders)."""
        return self._conn().execute("SELECT value FROM meta WHERE key='queue_id'").fetchone()[0]

    # -- adding and reading -------------------------------------------------------------------------------------
    def enqueue(self, key: FileKey, output: Path, options: dict[str, Any] | None = None) -> tuple[Job, bool]:
        """Add a job for this input version unless one exists. Returns (the job, whether it is new)."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO jobs (input, size, mtime_ns, digest, output, options, state, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key.path, key.size, key.mtime_ns, key.digest, str(output), json.dumps(options or {}), QUEUED, now),
            )
            created = cur.rowcount == 1
            row = db.execute(
                "SELECT * FROM jobs WHERE input=? AND size=? AND mtime_ns=? AND digest=?",
                (key.path, key.size, key.mtime_ns, key.digest),
            ).fetchone()
        return Job._from_row(row), created

    def find(self, key: FileKey) -> Job | None:
        row = self._conn().execute(
            "SELECT * FROM jobs WHERE input=? AND size=? AND mtime_ns=? AND digest=?",
            (key.path, key.size, key.mtime_ns, key.digest),
        ).fetchone()
        return Job._from_row(row) if row else None

    def get(self, job_id: int) -> Job:
        row = self._conn().execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return Job._from_row(row)

    def jobs(self, state: str | None = None) -> list[Job]:
        sql, args = "SELECT * FROM jobs", ()
        if state:
            sql, args = sql + " WHERE state=?", (state,)
        return [Job._from_row(r) for r in self._conn().execute(sql + " ORDER BY id", args)]

    def counts(self) -> dict[str, int]:
        rows = self._conn().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {s: 0 for s in STATES} | {r[0]: r[1] for r in rows}

    def next_wakeup(self) -> float | None:
        """When the earliest queued job becomes claimable (None when nothing is queued)."""
        row = self._conn().execute("SELECT MIN(not_before) FROM jobs WHERE state=?", (QUEUED,)).fetchone()
        return row[0]

    # -- state transitions --------------------------------------------------------------------------------------
    def claim(self, worker: str, lease_s: float, *, ids: list[int] | None = None) -> Job | None:
        """Take the oldest claimable queued job (optionally only among ``ids``) and mark it running."""
        now = time.time()
        sql = "SELECT id FROM jobs WHERE state=? AND not_before<=?"
        args: list[Any] = [QUEUED, now]
        if ids is not None:
            sql += f" AND id IN ({','.join('?' * len(ids))})" if ids else " AND 0"
            args += ids
        with self._tx() as db:
            row = db.execute(sql + " ORDER BY not_before, id LIMIT 1", args).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state=?, attempts=attempts+1, worker=?, lease_until=?, started=?, error=NULL"
                " WHERE id=?",
                (RUNNING, worker, now + lease_s, now, row["id"]),
            )
            return Job._from_row(db.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone())

    def heartbeat(self, job_id: int, worker: str, lease_s: float) -> bool:
        """Extend the lease; False means the job is no longer ours (it was requeued)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET lease_until=? WHERE id=? AND worker=? AND state=?",
                (time.time() + lease_s, job_id, worker, RUNNING),
            )
            return cur.rowcount == 1

    def complete(self, job_id: int, worker: str, *, seconds: float, duration: float | None,
                 backends: dict[str, str], dispose_to: Path | None = None) -> bool:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET state=?, finished=?, seconds=?, duration=?, backends=?, error=NULL, lease_until=NULL,"
                " dispose_to=?, disposed=? WHERE id=? AND worker=? AND state=?",
                (DONE, time.time(), seconds, duration, json.dumps(backends), _opt(dispose_to),
                 int(dispose_to is None), job_id, worker, RUNNING),
            )
            return cur.rowcount == 1

    def fail(self, job_id: int, worker: str, error: str, *, seconds: float | None = None,
             retry_at: float | None = None, dispose_to: Path | None = None) -> str:
        """Record an error: requeue for ``retry_at`` (transient) or mark failed. Returns the new state."""
        state = QUEUED if retry_at is not None else FAILED
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state=?, error=?, seconds=?, not_before=?, finished=?, lease_until=NULL,"
                " dispose_to=?, disposed=? WHERE id=? AND worker=? AND state=?",
                (state, error, seconds, retry_at or 0.0, None if retry_at else time.time(),
                 None if retry_at else _opt(dispose_to), int(retry_at is not None or dispose_to is None),
                 job_id, worker, RUNNING),
            )
        return state

    def postpone(self, job_id: int, worker: str, error: str, *, retry_at: float) -> bool:
        """Hand a running job back until ``retry_at`` without counting the attempt (its failure was not its own,
        e.g. the output disk is full); ``error`` says why it waits (``dubkit jobs`` shows it)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET state=?, attempts=MAX(attempts-1, 0), worker=NULL, lease_until=NULL, error=?,"
                " not_before=? WHERE id=? AND worker=? AND state=?",
                (QUEUED, error, retry_at, job_id, worker, RUNNING),
            )
            return cur.rowcount == 1

    def requeue(self, job_id: int, worker: str) -> bool:
        """Give a running job back untouched (shutdown): the attempt does not count."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET state=?, attempts=MAX(attempts-1, 0), worker=NULL, lease_until=NULL"
                " WHERE id=? AND worker=? AND state=?",
                (QUEUED, job_id, worker, RUNNING),
            )
            return cur.rowcount == 1

    def retry(self, job_id: int, *, output: Path | None = None, options: dict[str, Any] | None = None) -> None:
        """Put a finished (usually failed) job back in the queue with a fresh attempt count (and, optionally, a
        new output path and the dub options in force now: a retry after fixing the config must use the fix)."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state=?, attempts=0, not_before=0, error=NULL, worker=NULL, lease_until=NULL,"
                " dispose_to=NULL, disposed=1, output=COALESCE(?, output), options=COALESCE(?, options)"
                " WHERE id=? AND state IN (?, ?)",
                (QUEUED, _opt(output), None if options is None else json.dumps(options), job_id, DONE, FAILED),
            )

    def recover(self, *, max_attempts: int, everything: bool = False) -> list[Job]:
        """Requeue running jobs whose worker died (lease expired; or all of them when ``everything``, which the
        holder of the folder lock may do at start-up). A job whose worker died ``max_attempts`` times is failed:
        it probably kills the worker. Returns the recovered jobs as they were."""
        now = time.time()
        with self._tx() as db:
            sql = "SELECT * FROM jobs WHERE state=?" + ("" if everything else " AND lease_until<?")
            rows = db.execute(sql, (RUNNING,) if everything else (RUNNING, now)).fetchall()
            for r in rows:
                if r["attempts"] >= max_attempts:
                    db.execute(
                        "UPDATE jobs SET state=?, error=?, finished=?, worker=NULL, lease_until=NULL WHERE id=?",
                        (FAILED, f"the worker died during each of {r['attempts']} attempts", now, r["id"]),
                    )
                else:
                    db.execute("UPDATE jobs SET state=?, worker=NULL, lease_until=NULL WHERE id=?", (QUEUED, r["id"]))
        return [Job._from_row(r) for r in rows]

    def pending_disposals(self) -> list[Job]:
        """Finished jobs whose input still has to be moved (a crash between finishing and moving)."""
        rows = self._conn().execute("SELECT * FROM jobs WHERE disposed=0 AND state IN (?, ?)", (DONE, FAILED))
        return [Job._from_row(r) for r in rows]

    def set_disposal(self, job_id: int, dispose_to: Path | None) -> None:
        """Say where a finished job's input must go (None: nowhere)."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET dispose_to=?, disposed=? WHERE id=?",
                       (_opt(dispose_to), int(dispose_to is None), job_id))

    def mark_disposed(self, job_id: int, moved_to: Path | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET disposed=1, dispose_to=? WHERE id=?", (_opt(moved_to), job_id))


def _opt(p: Path | None) -> str | None:
    return None if p is None else str(p)
