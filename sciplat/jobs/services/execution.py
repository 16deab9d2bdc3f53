"""Running one job's process as its user, through the lab backend (the same cgroup, launcher
and privilege drop as a lab, not a second copy of them), and reading how it ended."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sciplat.config import Config, EnvironmentConfig, SizeConfig
from sciplat.identity.models import User
from sciplat.jobs import runner
from sciplat.jobs.builder import build_job_spec
from sciplat.jobs.config import JobsConfig
from sciplat.jobs.models.job import Job
from sciplat.jobs.storage import homefiles
from sciplat.labs.backend import LabBackend
from sciplat.labs.models import LabState
from sciplat.paths import DataDir
from sciplat.volumes.service import VolumeService
from sciplat.volumes.storage_limits import StorageLimits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How a finished process ended: ok, or the error the user sees."""

    ok: bool
    error: str = ""
    cell: int | None = None
    source: str = ""


class Execution:
    """Starts, watches and stops jobs' processes."""

    def __init__(
        self,
        config: Config,
        jobs: JobsConfig,
        backend: LabBackend,
        volumes: VolumeService,
        storage_limits: StorageLimits,
        data: DataDir,
        isolate: bool,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.backend = backend
        self.volumes = volumes
        self.storage_limits = storage_limits
        self.data = data
        self.isolate = isolate
        self.runner_source = Path(runner.__file__).read_text()

    def log_path(self, job_id: str) -> Path:
        return self.data.logs / "jobs" / f"{job_id}.log"

    async def launch(
        self,
        job: Job,
        user: User,
        environment: EnvironmentConfig,
        size: SizeConfig,
        notebook: str,
        cwd: str,
    ) -> LabState:
        """Prepare the home, write the parameterised notebook into the job's directory (as the
        user's file) and start the runner.

        Raises:
            StorageError, OSError: the home or the job's directory cannot be prepared.
            LabError: the backend could not start the process.
        """
        await asyncio.to_thread(self.storage_limits.apply, user)
        home = await asyncio.to_thread(self.volumes.provision, user)
        owner = (user.uid, user.gid) if self.isolate else None
        job_dir = await asyncio.to_thread(
            homefiles.create_job_dir, home, self.jobs.results_dir, job.id,
            {runner.INPUT: notebook.encode()}, owner,
        )  # fmt: skip
        spec = build_job_spec(
            job_id=job.id,
            user=user,
            home=home,
            job_dir=job_dir,
            cwd=cwd,
            environment=environment,
            size=size,
            runner_source=self.runner_source,
            cell_timeout=self.jobs.cell_timeout,
            log_path=self.log_path(job.id),
            isolate=self.isolate,
        )
        spec.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return await self.backend.start(spec, lambda _pct, _msg: None)

    def read(self, job: Job, name: str) -> bytes | None:
        """A file in the job's directory (of the job whose result it shows)."""
        home = Path(job.result_dir).parents[len(self.jobs.results_dir.split("/"))]
        return homefiles.read_job_file(home, self.jobs.results_dir, job.cached_from or job.id, name)

    def progress(self, job: Job) -> None:
        """Copy the runner's progress (cell n of m) into ``job``."""
        data = self.read(job, runner.PROGRESS)
        if data:
            try:
                p = json.loads(data)
                job.cells_done, job.cells_total = int(p["done"]), int(p["total"])
            except (ValueError, KeyError, TypeError):
                pass

    async def poll(self, state: LabState) -> int | None:
        return await self.backend.poll(state)

    async def finish(self, job: Job, state: LabState, status: int) -> Outcome:
        """The outcome of a process that ended; its cgroup is removed."""
        oom = self.backend.usage(state).oom_kills
        tail = self.backend.log_tail(state, 10)
        await self.backend.stop(state, now=True)
        self.progress(job)
        size = next((s for s in self.config.sizes if s.name == job.size), None)
        if oom:
            limit = f" of {size.memory / 2**20:.0f} MiB (size {size.name})" if size else ""
            return Outcome(
                False,
                f"out of memory: the job used more than its memory limit{limit}"
                "; submit it with a larger size or load less data at once",
            )
        raw = self.read(job, runner.RESULT)
        if raw is None:
            return Outcome(False, f"the job ended unexpectedly (exit status {status}): {tail}")
        try:
            result = json.loads(raw)
        except ValueError:
            return Outcome(False, f"the job's result file is damaged (exit status {status})")
        if result.get("ok"):
            return Outcome(True)
        cell = result.get("cell")
        where = f" in cell {cell + 1}" if isinstance(cell, int) else ""
        return Outcome(False, f"failed{where}: {result.get('error', 'unknown error')}",
                       cell if isinstance(cell, int) else None,
                       str(result.get("source", "")))  # fmt: skip

    async def stop(self, state: LabState) -> None:
        await self.backend.stop(state, now=True)
