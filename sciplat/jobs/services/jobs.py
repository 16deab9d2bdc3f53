"""Notebook jobs: submission (with the result cache), the fair queue, watching running jobs,
cancelling, results, and recovering after a restart. The only place these rules live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from sciplat.config import Config, EnvironmentConfig, SizeConfig
from sciplat.errors import NotFoundError, SciplatError
from sciplat.identity.models import User
from sciplat.identity.services.users import IdentityService
from sciplat.jobs.config import JobsConfig
from sciplat.jobs.errors import JobNotFoundError, JobRequestError, JobsForbiddenError, JobStateError
from sciplat.jobs.models.job import CacheEntry, Job, JobRequest, JobStatus
from sciplat.jobs.services import notebooks
from sciplat.jobs.services.access import Caller
from sciplat.jobs.services.execution import Execution
from sciplat.jobs.services.fairqueue import FairQueue
from sciplat.jobs.storage import homefiles
from sciplat.jobs.storage.environments import EnvironmentIdentity
from sciplat.jobs.storage.store import JobStore
from sciplat.labs.environments.service import EnvironmentService
from sciplat.labs.menu import sizes_within
from sciplat.labs.models import LabState
from sciplat.quotas.services.quotas import QuotaService

log = logging.getLogger(__name__)

#: How often running jobs are looked at (progress, exit, timeout).
WATCH_SECONDS = 0.05
RESTARTED = (
    "the jobs service restarted while this job was running; submit it again (stored results "
    "are not affected)"
)


class JobService:
    """Policy for notebook jobs; :class:`Execution` does the mechanics."""

    def __init__(
        self,
        config: Config,
        store: JobStore,
        identity: IdentityService,
        environments: EnvironmentService,
        quotas: QuotaService,
        execution: Execution,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.jobs: JobsConfig = config.services.jobs
        self.store = store
        self.identity = identity
        self.environments = environments
        self.quotas = quotas
        self.execution = execution
        self.clock = clock
        self.env_identity = EnvironmentIdentity()
        self.queue = FairQueue()
        #: jobs started or starting, by id; users' groups (for their quota), by name
        self._running: dict[str, Job] = {}
        self._groups: dict[str, tuple[str, ...]] = {}
        self._cancelled: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Recover after a restart, then schedule and watch jobs in the background: a job that
        was running is stopped and marked failed, one that never started is queued again."""
        for job in self.store.with_status(JobStatus.RUNNING, JobStatus.QUEUED):
            if job.status is JobStatus.RUNNING and job.state:
                state = LabState.from_dict(job.state)
                if state is not None:
                    with contextlib.suppress(SciplatError, OSError):
                        await self.execution.stop(state)
                self._finish(job, JobStatus.FAILED, RESTARTED)
            else:
                job.status, job.state = JobStatus.QUEUED, None
                self.store.save(job)
                self.queue.push(job.user, job.id)
        # papermill's import takes a second or two: pay it now, not in the first request
        await asyncio.to_thread(notebooks.load_papermill)
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        """Stop scheduling; running jobs are left to the next start's recovery."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- requests -----------------------------------------------------------------------------
    def user(self, caller: Caller) -> User:
        """The platform user behind a token.

        Raises:
            JobsForbiddenError: the token belongs to no platform user (e.g. a service).
        """
        try:
            return self.identity.get_user(caller.name)
        except NotFoundError as err:
            raise JobsForbiddenError(f"{caller.name} is not a user of this platform") from err

    def submit(self, caller: Caller, request: JobRequest) -> Job:
        """Serve from the cache (no kernel started) or queue a new run.

        Raises:
            JobRequestError: no notebook, an unreadable path, an unknown environment or size.
            QuotaExceededError: the user's ``jobs`` quota is 0.
        """
        user = self.user(caller)
        self.quotas.check(user, "jobs", 0, 1)
        env = self._environment(request.environment)
        size = self._size(user, request.size)
        timeout = min(request.timeout or self.jobs.default_timeout, self.jobs.max_timeout)
        home = self.execution.volumes.home(user)
        roots = [self.config.volumes.root]
        gids = [user.gid, *user.supplementary_gids]
        uid = user.uid if self.execution.isolate else None  # not root: all runs as one account
        if request.notebook is not None:
            nb = notebooks.parse_notebook(request.notebook, "the submitted notebook")
            shown, base = "(submitted notebook)", PurePosixPath(".")
        elif request.path:
            data = homefiles.read_user_file(
                request.path, home, roots, uid, gids, self.jobs.max_notebook_bytes
            )
            nb = notebooks.parse_notebook(data, request.path)
            shown, base = request.path, PurePosixPath(request.path).parent
        else:
            raise JobRequestError("send a notebook: 'path' (in your home) or 'notebook' (JSON)")
        key = ""
        if notebooks.cache_allowed(nb):
            inputs = {
                name: homefiles.hash_user_file(str(base / name), home, roots, uid, gids)
                for name in notebooks.declared_inputs(nb)
            }
            key = notebooks.cache_key(
                notebooks.code_sources(nb), request.parameters, self.env_identity.of(env, home),
                inputs,
            )
        now = self.clock()
        job = Job(
            id=secrets.token_hex(8),
            user=user.name,
            status=JobStatus.QUEUED,
            notebook=shown,
            parameters=dict(request.parameters),
            environment=env.name,
            size=size.name,
            timeout=timeout,
            created=now,
            result_dir="",
            cache_key=key,
        )
        hit = self._cached(user, home, key) if key and not request.force else None
        if hit is not None:
            job.status, job.cached, job.cached_from = JobStatus.DONE, True, hit.job_id
            job.cached_time, job.result_dir, job.finished = hit.created, hit.result_dir, now
            original = self.store.get(hit.job_id)
            if original is not None:
                job.cells_done = job.cells_total = original.cells_total
            self.store.save(job)
            return job
        text = notebooks.parameterise(nb, request.parameters)
        job.result_dir = str(home / self.jobs.results_dir / job.id)
        self._groups[user.name] = tuple(user.group_names)
        self.store.save(job, (text, str(Path(home / base).resolve())))
        self.queue.push(user.name, job.id)
        self._wake.set()
        return job

    def get(self, caller: Caller, job_id: str) -> Job:
        """The caller's job ``job_id`` (another user's is 'not found' too).

        Raises:
            JobNotFoundError: no such job of the caller.
        """
        job = self._running.get(job_id) or self.store.get(job_id)
        if job is None or job.user != caller.name:
            raise JobNotFoundError(f"you have no job {job_id[:40]!r}")
        return job

    def list_jobs(self, caller: Caller, limit: int = 100) -> list[Job]:
        return [self._running.get(j.id, j) for j in self.store.of_user(caller.name, limit)]

    async def cancel(self, caller: Caller, job_id: str) -> Job:
        """Cancel a queued or running job; a finished one is left as it is.

        Raises:
            JobNotFoundError: no such job of the caller.
        """
        job = self.get(caller, job_id)
        if job.status.finished:
            return job
        if self.queue.remove(job.id):
            self._finish(job, JobStatus.CANCELLED, "cancelled by its owner")
            return job
        self._cancelled.add(job.id)
        if job.state:
            state = LabState.from_dict(job.state)
            if state is not None:
                await self.execution.stop(state)
        self._wake.set()
        return job

    def result(self, caller: Caller, job_id: str, name: str = "output.ipynb") -> bytes:
        """The executed notebook of a finished job (also of a failed one: outputs up to the
        error).

        Raises:
            JobNotFoundError: no such job of the caller.
            JobStateError: not finished, or its stored result was dropped.
        """
        job = self.get(caller, job_id)
        if job.status not in (JobStatus.DONE, JobStatus.FAILED):
            raise JobStateError(f"job {job.id} is {job.status.value}: its notebook is not ready")
        data = self.execution.read(job, name)
        if data is None:
            raise JobStateError(f"the result of job {job.id} is gone (dropped or deleted)")
        return data

    # -- the cache ----------------------------------------------------------------------------
    def cache_entries(self, caller: Caller) -> list[dict[str, Any]]:
        """The caller's stored results with their sizes (they count against their storage)."""
        return [
            e.view(homefiles.job_dir_size(Path(e.result_dir)))
            for e in self.store.cache_of(caller.name)
        ]

    def cache_drop(self, caller: Caller, key: str) -> None:
        """Forget a stored result and delete its files.

        Raises:
            JobNotFoundError: the caller has no such entry.
        """
        entry = self.store.cache_get(caller.name, key)
        if entry is None or not self.store.cache_drop(caller.name, key):
            raise JobNotFoundError(f"you have no stored result {key[:70]!r}")
        user = self.user(caller)
        homefiles.remove_job_dir(
            self.execution.volumes.home(user), self.jobs.results_dir, entry.job_id
        )

    def _cached(self, user: User, home: Path, key: str) -> CacheEntry | None:
        entry = self.store.cache_get(user.name, key)
        if entry is None:
            return None
        if homefiles.read_job_file(home, self.jobs.results_dir, entry.job_id, "result.json"):
            return entry
        self.store.cache_drop(user.name, key)  # its files were deleted: run again
        return None

    # -- choices ------------------------------------------------------------------------------
    def _environment(self, name: str) -> EnvironmentConfig:
        env = (
            next((e for e in self.config.environments if e.name == name), None)
            if name
            else self.config.default_environment()
        )
        offered = [e.name for e in self.config.environments if self.environments.available(e)]
        if env is None or env.name not in offered:
            raise JobRequestError(
                f"there is no environment {name[:64]!r} to run in "
                f"(available: {', '.join(offered) or 'none'})"
            )
        return env

    def _size(self, user: User, name: str) -> SizeConfig:
        quota = self.quotas.effective(user)
        cores, memory = quota["cores"].value, quota["memory"].value
        allowed = sizes_within(
            self.config.sizes,
            None if cores is None else float(cores),
            None if memory is None else int(memory),
        )
        name = name or self.jobs.size or self.config.default_size().name
        size = next((s for s in allowed if s.name == name), None)
        if size is None:
            raise JobRequestError(
                f"the size {name[:64]!r} is not one you can use "
                f"(yours: {', '.join(s.name for s in allowed) or 'none'})"
            )
        return size

    # -- scheduling and watching --------------------------------------------------------------
    def _limit(self, user: str) -> int | None:
        """The user's ``jobs`` quota (None: only ``workers`` limits them)."""
        if user not in self._groups:
            try:
                self._groups[user] = tuple(self.identity.get_user(user).group_names)
            except NotFoundError:
                self._groups[user] = ()
        value = self.quotas.resolver.limit("jobs", user, list(self._groups[user])).value
        return None if value is None else int(value)

    def _may_start(self, user: str) -> bool:
        if len(self._running) >= self.jobs.workers:
            return False
        limit = self._limit(user)
        return limit is None or sum(j.user == user for j in self._running.values()) < limit

    async def _loop(self) -> None:
        while True:
            try:
                self._schedule()
                await self._watch()
            except Exception:
                log.exception("the job scheduler failed; it goes on")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), WATCH_SECONDS if self._running else None)

    def _schedule(self) -> None:
        while (picked := self.queue.pop(self._may_start)) is not None:
            job = self.store.get(picked[1])
            if job is None or job.status is not JobStatus.QUEUED:
                continue
            job.status, job.started = JobStatus.RUNNING, self.clock()
            self._running[job.id] = job
            self.store.save(job)
            asyncio.create_task(self._launch(job))  # noqa: RUF006 - tracked via _running

    async def _launch(self, job: Job) -> None:
        try:
            user = self.identity.get_user(job.user)
            env = self._environment(job.environment)
            size = next(s for s in self.config.sizes if s.name == job.size)
            text, cwd = self.store.input_of(job.id) or ("", "")
            if not text:
                raise JobRequestError("the job's notebook was not kept; submit it again")
            state = await self.execution.launch(job, user, env, size, text, cwd)
        except (SciplatError, OSError, StopIteration) as exc:
            message = exc.message if isinstance(exc, SciplatError) else str(exc)
            log.warning("job %s of %s could not start: %s", job.id, job.user, message)
            self._running.pop(job.id, None)
            self._finish(job, JobStatus.FAILED, f"could not start: {message}")
            self._wake.set()
            return
        job.state = state.to_dict()
        self.store.save(job)
        self._wake.set()

    async def _watch(self) -> None:
        for job in list(self._running.values()):
            if not job.state:
                continue  # still starting
            state = LabState.from_dict(job.state)
            if state is None:
                continue
            status = await self.execution.poll(state)
            if status is None:
                self.execution.progress(job)
                if job.id in self._cancelled:
                    await self.execution.stop(state)
                elif self.clock() - job.started > job.timeout:
                    await self.execution.stop(state)
                    self._running.pop(job.id)
                    self._finish(job, JobStatus.FAILED,
                                 f"stopped after its timeout of {job.timeout:g} s")  # fmt: skip
                continue
            self._running.pop(job.id)
            if job.id in self._cancelled:
                self._cancelled.discard(job.id)
                await self.execution.stop(state)
                self._finish(job, JobStatus.CANCELLED, "cancelled by its owner")
                continue
            outcome = await self.execution.finish(job, state, status)
            job.error_cell, job.error_source = outcome.cell, outcome.source
            self._finish(job, JobStatus.DONE if outcome.ok else JobStatus.FAILED, outcome.error)
            if outcome.ok and job.cache_key:
                self.store.cache_put(
                    CacheEntry(job.user, job.cache_key, job.id, job.finished, job.result_dir)
                )

    def _finish(self, job: Job, status: JobStatus, error: str = "") -> None:
        job.status, job.error, job.finished, job.state = status, error, self.clock(), None
        self.store.save(job)
