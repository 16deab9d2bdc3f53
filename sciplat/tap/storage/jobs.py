"""Async TAP jobs on disk: records in ``<tapdir>/jobs.sqlite``, files in ``<tapdir>/jobs/<id>/``.

A job's directory holds its uploaded tables (``upload-<name>.parquet``, so a job queued when
the service stopped can run after a restart) and its result (``result``). Records live in
SQLite through SQLAlchemy Core, in WAL mode so the service and the CLI can share the file.
Phase changes are compare-and-set (:meth:`JobStore.transition`), so a job aborted while it
finishes ends in exactly one final phase.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row

from sciplat.db import LazySqlite
from sciplat.tap.models.job import Job, JobOwner, Phase

_META = MetaData()
_JOBS = Table(
    "tap_jobs", _META,
    Column("id", String(64), primary_key=True),
    Column("owner", String(255), nullable=True, index=True),
    Column("owner_json", Text, nullable=False),
    Column("phase", String(16), nullable=False, index=True),
    Column("run_id", String(255), nullable=True),
    Column("created", DateTime, nullable=False, index=True),
    Column("started", DateTime, nullable=True),
    Column("ended", DateTime, nullable=True),
    Column("destruction", DateTime, nullable=False, index=True),
    Column("execution_duration", Float, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("error", Text, nullable=True),
    Column("result_mime", String(255), nullable=True),
    Column("result_rows", Integer, nullable=True),
    Column("overflow", Boolean, nullable=False, default=False),
)  # fmt: skip


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back: they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _naive(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def _job(row: Row[Any]) -> Job:
    owner = json.loads(row.owner_json)
    return Job(
        id=row.id,
        owner=JobOwner(
            owner["name"], tuple(owner["groups"]), owner["max_rows"], owner["max_seconds"]
        ),
        phase=Phase(row.phase),
        created=_utc(row.created),  # type: ignore[arg-type]
        destruction=_utc(row.destruction),  # type: ignore[arg-type]
        execution_duration=row.execution_duration,
        parameters=json.loads(row.parameters),
        run_id=row.run_id,
        started=_utc(row.started),
        ended=_utc(row.ended),
        error=row.error,
        result_mime=row.result_mime,
        result_rows=row.result_rows,
        overflow=bool(row.overflow),
    )


_DATES = ("created", "started", "ended", "destruction")


class JobStore:
    """Job records and files under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = directory / "jobs"
        # created on first use, so ``sciplat catalog load`` leaves no file
        self._db = LazySqlite(
            directory / "jobs.sqlite",
            _META,
            lambda: self.files.mkdir(parents=True, exist_ok=True),
        )

    @property
    def engine(self) -> Engine:
        return self._db.engine

    def close(self) -> None:
        self._db.close()

    def add(self, job: Job) -> None:
        """Store a new job."""
        owner = job.owner
        with self.engine.begin() as con:
            con.execute(insert(_JOBS).values(
                id=job.id, owner=owner.name, phase=job.phase.value, run_id=job.run_id,
                owner_json=json.dumps({"name": owner.name, "groups": list(owner.groups),
                                       "max_rows": owner.max_rows,
                                       "max_seconds": owner.max_seconds}),
                created=_naive(job.created), destruction=_naive(job.destruction),
                execution_duration=job.execution_duration,
                parameters=json.dumps(job.parameters), overflow=False,
            ))  # fmt: skip

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        with self.engine.connect() as con:
            row = con.execute(select(_JOBS).where(_JOBS.c.id == job_id)).first()
        return _job(row) if row is not None else None

    def for_owner(
        self,
        owner: str,
        phases: Iterable[Phase] = (),
        after: datetime | None = None,
        last: int | None = None,
    ) -> list[Job]:
        """``owner``'s jobs, oldest first; with ``last``, the newest ``last``, newest first."""
        query = select(_JOBS).where(_JOBS.c.owner == owner)
        wanted = [p.value for p in phases]
        if wanted:
            query = query.where(_JOBS.c.phase.in_(wanted))
        if after is not None:
            query = query.where(_JOBS.c.created > _naive(after))
        if last is not None:  # UWS 1.1: the newest ``last``, newest first
            query = query.order_by(_JOBS.c.created.desc(), _JOBS.c.id).limit(last)
        else:
            query = query.order_by(_JOBS.c.created, _JOBS.c.id)
        with self.engine.connect() as con:
            return [_job(r) for r in con.execute(query)]

    def count(self, owner: str | None) -> int:
        """How many jobs ``owner`` keeps."""
        with self.engine.connect() as con:
            return len(con.execute(select(_JOBS.c.id).where(_JOBS.c.owner == owner)).all())

    def with_phase(self, phase: Phase) -> list[Job]:
        """Every job in ``phase``, oldest first (for recovery after a restart)."""
        query = select(_JOBS).where(_JOBS.c.phase == phase.value).order_by(_JOBS.c.created)
        with self.engine.connect() as con:
            return [_job(r) for r in con.execute(query)]

    def expired(self, now: datetime) -> list[str]:
        """Ids of jobs whose destruction time has passed."""
        query = select(_JOBS.c.id).where(_JOBS.c.destruction <= _naive(now))
        with self.engine.connect() as con:
            return [r.id for r in con.execute(query)]

    def update(self, job_id: str, **values: Any) -> None:
        """Set fields of a job (datetimes in UTC; ``phase`` as a Phase)."""
        self.transition(job_id, None, **values)

    def transition(self, job_id: str, from_phases: Iterable[Phase] | None, **values: Any) -> bool:
        """Set fields only while the job is in one of ``from_phases``; False if it was not."""
        for key in _DATES:
            if key in values:
                values[key] = _naive(values[key])
        if isinstance(values.get("phase"), Phase):
            values["phase"] = values["phase"].value
        if isinstance(values.get("parameters"), dict):
            values["parameters"] = json.dumps(values["parameters"])
        query = update(_JOBS).where(_JOBS.c.id == job_id).values(**values)
        if from_phases is not None:
            query = query.where(_JOBS.c.phase.in_([p.value for p in from_phases]))
        with self.engine.begin() as con:
            return bool(con.execute(query).rowcount)

    def delete(self, job_id: str) -> None:
        """Remove the record and every file of a job."""
        with self.engine.begin() as con:
            con.execute(delete(_JOBS).where(_JOBS.c.id == job_id))
        shutil.rmtree(self.files / job_id, ignore_errors=True)

    def _dir(self, job_id: str) -> Path:
        path = self.files / job_id
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def save_uploads(self, job_id: str, tables: Mapping[str, pa.Table]) -> None:
        """Keep a job's uploaded tables until it has run."""
        for name, table in tables.items():
            pq.write_table(table, self._dir(job_id) / f"upload-{name}.parquet")

    def load_uploads(self, job_id: str) -> dict[str, pa.Table]:
        """The uploaded tables of a job, by name."""
        found = sorted((self.files / job_id).glob("upload-*.parquet"))
        return {p.stem.removeprefix("upload-"): pq.read_table(p) for p in found}

    def save_result(self, job_id: str, data: bytes) -> None:
        """Write a job's result (atomically: a reader sees all of it or none)."""
        final = self._dir(job_id) / "result"
        partial = final.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(final)
        for upload in self.files.joinpath(job_id).glob("upload-*.parquet"):
            upload.unlink()

    def result_path(self, job_id: str) -> Path | None:
        """The result file of a job, if it has one."""
        path = self.files / job_id / "result"
        return path if path.exists() else None


def utcnow() -> datetime:
    """Now, in UTC (kept to the microsecond so jobs sort by creation; shown to the second)."""
    return datetime.now(UTC)
