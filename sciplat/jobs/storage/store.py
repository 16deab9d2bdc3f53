"""Job records and cache entries in SQLite (the data directory's ``jobs.sqlite``), so jobs
and results survive a restart of the service. Each job is one JSON document plus the columns
it is looked up by."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from sciplat.jobs.models.job import CacheEntry, Job, JobStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user, created);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE TABLE IF NOT EXISTS inputs (
    id TEXT PRIMARY KEY,
    notebook TEXT NOT NULL,
    cwd TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cache (
    user TEXT NOT NULL,
    key TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created REAL NOT NULL,
    result_dir TEXT NOT NULL,
    PRIMARY KEY (user, key)
);
"""


class JobStore:
    """One SQLite file; safe to use from the service's threads (one lock, short statements)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- jobs ---------------------------------------------------------------------------------
    def save(self, job: Job, notebook: tuple[str, str] | None = None) -> None:
        """Insert or replace ``job``; with ``notebook`` (the parameterised notebook and the
        kernel's directory) kept until the job starts, so a queued job survives a restart.
        A finished job's notebook is dropped."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (id, user, status, created, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (job.id, job.user, job.status.value, job.created, json.dumps(job.to_record())),
            )
            if notebook is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO inputs (id, notebook, cwd) VALUES (?, ?, ?)",
                    (job.id, *notebook),
                )
            elif job.status.finished:
                self._db.execute("DELETE FROM inputs WHERE id = ?", (job.id,))
            self._db.execute("COMMIT")

    def input_of(self, job_id: str) -> tuple[str, str] | None:
        """The parameterised notebook and working directory of a job that has not started."""
        with self._lock:
            row = self._db.execute(
                "SELECT notebook, cwd FROM inputs WHERE id = ?", (job_id,)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_record(json.loads(row[0])) if row else None

    def of_user(self, user: str, limit: int = 100) -> list[Job]:
        """``user``'s newest jobs first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM jobs WHERE user = ? ORDER BY created DESC LIMIT ?",
                (user, limit),
            ).fetchall()
        return [Job.from_record(json.loads(r[0])) for r in rows]

    def with_status(self, *statuses: JobStatus) -> list[Job]:
        """Jobs in any of ``statuses``, oldest first."""
        marks = ",".join("?" * len(statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT record FROM jobs WHERE status IN ({marks}) ORDER BY created",  # noqa: S608 - only '?' marks
                [s.value for s in statuses],
            ).fetchall()
        return [Job.from_record(json.loads(r[0])) for r in rows]

    # -- result cache -------------------------------------------------------------------------
    def cache_get(self, user: str, key: str) -> CacheEntry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT user, key, job_id, created, result_dir FROM cache "
                "WHERE user = ? AND key = ?",
                (user, key),
            ).fetchone()
        return CacheEntry(*row) if row else None

    def cache_put(self, entry: CacheEntry) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cache (user, key, job_id, created, result_dir) "
                "VALUES (?, ?, ?, ?, ?)",
                (entry.user, entry.key, entry.job_id, entry.created, entry.result_dir),
            )

    def cache_of(self, user: str) -> list[CacheEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user, key, job_id, created, result_dir FROM cache WHERE user = ? "
                "ORDER BY created DESC",
                (user,),
            ).fetchall()
        return [CacheEntry(*r) for r in rows]

    def cache_drop(self, user: str, key: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM cache WHERE user = ? AND key = ?", (user, key))
        return cur.rowcount > 0
