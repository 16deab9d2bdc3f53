"""Async TAP (UWS 1.1) policy: who sees which job, phases, limits, the worker pool, cleanup.

- A job belongs to the hub user who created it; anyone else gets "no such job" (404), never a
  hint that it exists. Anonymous callers (when ``anonymous`` is on) may create jobs too: those
  are reachable only by their unguessable id (128 random bits) and never listed.
- ``async_workers`` jobs run at once, in this process's event loop; the others wait QUEUED.
- A job's query is stopped in the database after its executionduration (at most
  ``async_max_seconds``, shortened by the owner's query_seconds quota); ABORT stops it too.
- Records and results survive a restart (:class:`JobStore`): at start, a job that was
  EXECUTING goes to ERROR (its query died with the process) and a QUEUED one queues again.
- At its destruction time (``job_retention_days`` after creation unless the owner asked for
  sooner) a job is aborted if needed and deleted with its files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from sciplat.tap.config import TapConfig
from sciplat.tap.errors import TapError, TapParameterError, TapQuotaError
from sciplat.tap.models.job import ACTIVE, Job, JobOwner, Phase
from sciplat.tap.models.query import Caller, QueryRequest
from sciplat.tap.services.query import QueryService, parse_format
from sciplat.tap.services.upload import UploadService, upload_from_arrow
from sciplat.tap.storage.backend import QueryCancel
from sciplat.tap.storage.jobs import JobStore, utcnow

log = logging.getLogger(__name__)
_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_WAIT = 60.0  # seconds one WAIT request may block (clients ask again)
_CLEANUP_EVERY = 300.0


class JobNotFoundError(TapError):
    """No job with this id that the caller may see."""

    code = "job_not_found"
    status_code = 404


class JobConflictError(TapError):
    """A change the job's phase does not allow (e.g. new parameters once it has run)."""

    code = "job_conflict"
    status_code = 409


class JobService:
    """Creates, runs, aborts, waits for and destroys async jobs."""

    def __init__(
        self,
        config: TapConfig,
        store: JobStore,
        query: QueryService,
        uploads: UploadService,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.query = query
        self.uploads = uploads
        self.clock = clock
        self._queue: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running: dict[str, QueryCancel] = {}
        self._changed: asyncio.Condition | None = None

    # lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover jobs of a previous run, then start the workers and the cleanup loop."""
        if self._queue is not None:
            return
        self._queue = asyncio.Queue()
        self._changed = asyncio.Condition()
        for job in self.store.with_phase(Phase.EXECUTING):
            self.store.transition(job.id, [Phase.EXECUTING], phase=Phase.ERROR, ended=self.clock(),
                                  error="the TAP service restarted while this job was running; "
                                  "run it again")  # fmt: skip
        for job in self.store.with_phase(Phase.QUEUED):
            self._queue.put_nowait(job.id)
        self.cleanup()
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"tap-job-worker-{n}")
            for n in range(self.config.async_workers)
        ]
        self._tasks.append(asyncio.create_task(self._cleanup_loop(), name="tap-job-cleanup"))

    async def stop(self) -> None:
        """Stop the workers; running jobs end in ERROR (their queries are interrupted)."""
        for job_id, cancel in list(self._running.items()):
            self.store.transition(job_id, [Phase.EXECUTING], phase=Phase.ERROR, ended=self.clock(),
                                  error="the TAP service stopped while this job was running; "
                                  "run it again")  # fmt: skip
            cancel.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks, self._queue = [], None

    # reading ---------------------------------------------------------------------------------

    def get(self, caller: Caller, job_id: str) -> Job:
        """The caller's job.

        Raises:
            JobNotFoundError: no such job, or another user's.
        """
        job = self.store.get(job_id) if _ID.match(job_id) else None
        if job is None or job.owner.name != caller.name:
            raise JobNotFoundError(
                f"there is no job {job_id} of yours (it may have been destroyed)"
            )
        return job

    def list_jobs(
        self, caller: Caller, phases: Iterable[str], after: str | None, last: str | None
    ) -> list[Job]:
        """The caller's jobs, filtered as UWS 1.1 §2.2.2.1 says (PHASE, AFTER, LAST).

        Raises:
            TapParameterError: an unknown PHASE, AFTER not ISO 8601, LAST not a positive number.
        """
        if caller.name is None:
            return []
        try:
            wanted = [Phase(p.upper()) for p in phases]
        except ValueError:
            raise TapParameterError(
                f"PHASE must be one of {', '.join(p.value for p in Phase)}"
            ) from None
        since = _datetime("AFTER", after) if after else None
        count = None
        if last is not None:
            if not last.isdigit() or int(last) < 1:
                raise TapParameterError(f"LAST={last} is not a positive whole number")
            count = int(last)
        jobs = self.store.for_owner(caller.name, wanted, since, count)
        if not wanted:
            jobs = [j for j in jobs if j.phase != Phase.ARCHIVED]
        return jobs

    def result(self, caller: Caller, job_id: str) -> tuple[Job, bytes]:
        """The result document of a COMPLETED job.

        Raises:
            JobNotFoundError: no such job, or not COMPLETED (so it has no result).
        """
        job = self.get(caller, job_id)
        path = self.store.result_path(job_id)
        if job.phase != Phase.COMPLETED or path is None:
            raise JobNotFoundError(f"job {job_id} has no result: it is {job.phase.value}")
        return job, path.read_bytes()

    def result_size(self, job: Job) -> int | None:
        """Bytes of a COMPLETED job's result; None when it has none."""
        path = self.store.result_path(job.id)
        return path.stat().st_size if job.phase == Phase.COMPLETED and path else None

    async def wait(self, caller: Caller, job_id: str, seconds: float, phase: str | None) -> Job:
        """The job once its phase differs from ``phase`` (default: its current phase), or after
        ``seconds`` (-1: as long as this service allows); returns at once if it is not active.

        Raises:
            JobNotFoundError: no such job, or another user's.
        """
        job = self.get(caller, job_id)
        start = (phase or job.phase.value).upper()
        if job.phase.value != start or job.phase not in {*ACTIVE, Phase.PENDING}:
            return job
        limit = MAX_WAIT if seconds < 0 else min(seconds, MAX_WAIT)
        condition = self._changed
        if condition is None or limit <= 0:
            return job

        def moved() -> bool:
            current = self.store.get(job_id)
            return current is None or current.phase.value != start

        async with condition:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(condition.wait_for(moved), limit)
        return self.get(caller, job_id)

    # changing --------------------------------------------------------------------------------

    def create(self, caller: Caller, values: Mapping[str, str], files: Mapping[str, bytes]) -> Job:
        """A new PENDING job from TAP parameters (upper-case names) and uploaded files.

        Uploads are read now (they are stored with the job); LANG, FORMAT, MAXREC and the query
        are checked when the job runs, which then ends in ERROR with the reason (TAP 1.1: a
        job is created for any request, taplint checks it).

        Raises:
            TapParameterError: a bad upload, EXECUTIONDURATION or DESTRUCTION;
            TapQuotaError: too many jobs kept.
        """
        if self.store.count(caller.name) >= self.config.max_jobs_per_user:
            raise TapQuotaError(
                f"you keep {self.config.max_jobs_per_user} jobs, this service's limit: delete "
                "finished ones (DELETE /async/<id>) first"
            )
        uploads = self.uploads.tables(values.get("UPLOAD"), files)
        now = self.clock()
        job = Job(
            id=secrets.token_hex(16),
            owner=JobOwner(
                caller.name, tuple(sorted(caller.groups)), caller.max_rows, caller.max_seconds
            ),
            phase=Phase.PENDING,
            created=now,
            destruction=now + timedelta(days=self.config.job_retention_days),
            execution_duration=self.config.async_default_seconds,
            parameters={k: v for k, v in values.items() if k not in _UWS_PARAMS},
            run_id=values.get("RUNID"),
        )
        self.store.add(job)
        self.store.save_uploads(job.id, {n: u.table for n, u in uploads.items()})
        if "EXECUTIONDURATION" in values:
            self.set_execution_duration(caller, job.id, values["EXECUTIONDURATION"])
        if "DESTRUCTION" in values:
            self.set_destruction(caller, job.id, values["DESTRUCTION"])
        log.info("tap job %s created by %s", job.id, caller.name or "anonymous")
        return self.get(caller, job.id)

    def set_parameters(self, caller: Caller, job_id: str, values: Mapping[str, str]) -> Job:
        """Change query parameters of a PENDING job (UPLOAD cannot change).

        Raises:
            JobNotFoundError; JobConflictError: not PENDING or UPLOAD given;
            TapParameterError: the parameters do not make a valid query.
        """
        job = self.get(caller, job_id)
        if job.phase != Phase.PENDING:
            raise JobConflictError(f"job {job_id} is {job.phase.value}: parameters can change "
                                   "only while it is PENDING")  # fmt: skip
        if "UPLOAD" in values:
            raise JobConflictError("UPLOAD cannot change after a job is created: create a new job")
        merged = {**job.parameters, **{k: v for k, v in values.items() if k not in _UWS_PARAMS}}
        self.query.request(merged, {})
        self.store.update(job_id, parameters=merged)
        return self.get(caller, job_id)

    def set_execution_duration(self, caller: Caller, job_id: str, value: str) -> Job:
        """Seconds the job's query may run (0 or more than allowed: the most allowed).

        Raises:
            JobNotFoundError; JobConflictError: not PENDING;
            TapParameterError: not a whole number of seconds.
        """
        job = self._pending(caller, job_id, "EXECUTIONDURATION")
        try:
            seconds = float(int(value))
        except ValueError:
            raise TapParameterError(f"EXECUTIONDURATION={value} is not whole seconds") from None
        if seconds <= 0 or seconds > self.config.async_max_seconds:
            seconds = self.config.async_max_seconds
        self.store.update(job.id, execution_duration=seconds)
        return self.get(caller, job_id)

    def set_destruction(self, caller: Caller, job_id: str, value: str) -> Job:
        """Move the destruction time earlier (a later one is cut to the retention limit).

        Raises:
            JobNotFoundError; TapParameterError: not an ISO 8601 time.
        """
        job = self.get(caller, job_id)
        wanted = _datetime("DESTRUCTION", value)
        latest = job.created + timedelta(days=self.config.job_retention_days)
        self.store.update(job.id, destruction=min(wanted, latest))
        return self.get(caller, job_id)

    async def run(self, caller: Caller, job_id: str) -> Job:
        """PHASE=RUN: queue a PENDING job (running or finished jobs are left as they are).

        Raises:
            JobNotFoundError: no such job, or another user's.
        """
        job = self.get(caller, job_id)
        if self._queue is None:
            raise JobConflictError("the job queue is not running; try again shortly")
        if self.store.transition(job.id, [Phase.PENDING], phase=Phase.QUEUED):
            await self._queue.put(job.id)
            await self._notify()
        return self.get(caller, job_id)

    async def abort(self, caller: Caller, job_id: str) -> Job:
        """PHASE=ABORT: stop the job's query in the database; it ends ABORTED.

        Raises:
            JobNotFoundError: no such job, or another user's.
        """
        job = self.get(caller, job_id)
        await self._abort(job.id)
        return self.get(caller, job_id)

    async def delete(self, caller: Caller, job_id: str) -> None:
        """Abort the job if it runs, then remove it and its files.

        Raises:
            JobNotFoundError: no such job, or another user's.
        """
        job = self.get(caller, job_id)
        await self._abort(job.id)
        self.store.delete(job.id)
        await self._notify()

    def cleanup(self) -> int:
        """Destroy every job past its destruction time; returns how many."""
        expired = self.store.expired(self.clock())
        for job_id in expired:
            cancel = self._running.get(job_id)
            if cancel is not None:
                cancel.set()
            self.store.delete(job_id)
        if expired:
            log.info("tap jobs: destroyed %d past their destruction time", len(expired))
        return len(expired)

    # internals -------------------------------------------------------------------------------

    def _pending(self, caller: Caller, job_id: str, what: str) -> Job:
        job = self.get(caller, job_id)
        if job.phase != Phase.PENDING:
            raise JobConflictError(f"job {job_id} is {job.phase.value}: {what} can change only "
                                   "while it is PENDING")  # fmt: skip
        return job

    async def _abort(self, job_id: str) -> None:
        moved = self.store.transition(
            job_id, [Phase.PENDING, Phase.QUEUED, Phase.EXECUTING], phase=Phase.ABORTED,
            ended=self.clock(),
        )  # fmt: skip
        cancel = self._running.get(job_id)
        if cancel is not None:
            cancel.set()
        if moved:
            await self._notify()

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def _cleanup_loop(self) -> None:
        while True:
            await asyncio.sleep(_CLEANUP_EVERY)
            try:
                self.cleanup()
            except Exception:  # keep cleaning later; the log has the cause
                log.exception("tap job cleanup failed")

    async def _worker(self) -> None:
        assert self._queue is not None  # noqa: S101 - set by start() before workers exist
        queue = self._queue
        while True:
            job_id = await queue.get()
            try:
                await self._execute(job_id)
            except Exception:
                log.exception("tap job %s failed unexpectedly", job_id)
                self.store.transition(job_id, [Phase.EXECUTING], phase=Phase.ERROR,
                                      ended=self.clock(), error="the service failed on this "
                                      "job; the operators have the details in its log")  # fmt: skip
            finally:
                self._running.pop(job_id, None)
                queue.task_done()
                await self._notify()

    async def _execute(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None:
            return
        cancel = QueryCancel()
        self._running[job_id] = cancel
        if not self.store.transition(job_id, [Phase.QUEUED], phase=Phase.EXECUTING,
                                     started=self.clock()):  # fmt: skip
            return
        await self._notify()
        owner = job.owner
        caller = Caller(owner.name, frozenset(owner.groups), max_rows=owner.max_rows,
                        max_seconds=owner.max_seconds)  # fmt: skip
        try:
            request = await asyncio.to_thread(self._request, job)
            result = await self.query.run(caller, request, job.execution_duration, cancel)
            data = await asyncio.to_thread(self.query.serialize, result, request.format)
            if cancel.is_set:  # aborted or destroyed meanwhile: keep nothing
                return
            await asyncio.to_thread(self.store.save_result, job_id, data)
        except TapError as err:
            if not cancel.is_set:
                self.store.transition(job_id, [Phase.EXECUTING], phase=Phase.ERROR,
                                      ended=self.clock(), error=err.message)  # fmt: skip
            return
        _, mime = parse_format(job.parameters.get("RESPONSEFORMAT")
                               or job.parameters.get("FORMAT"))  # fmt: skip
        rows = result.table.num_rows
        self.store.transition(job_id, [Phase.EXECUTING], phase=Phase.COMPLETED,
                              ended=self.clock(), result_mime=mime, result_rows=rows,
                              overflow=result.overflow)  # fmt: skip
        log.info("tap job %s completed: %d rows", job_id, result.table.num_rows)

    def _request(self, job: Job) -> QueryRequest:
        uploads = {name: upload_from_arrow(name, table)
                   for name, table in self.store.load_uploads(job.id).items()}  # fmt: skip
        return self.query.request(job.parameters, uploads)


_UWS_PARAMS = frozenset({"PHASE", "EXECUTIONDURATION", "DESTRUCTION", "RUNID", "ACTION"})


def _datetime(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise TapParameterError(
            f"{name}={value} is not an ISO 8601 time (e.g. 2026-12-01T12:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)
