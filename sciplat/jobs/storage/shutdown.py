"""Stopping the running notebook jobs without the jobs service (``sciplat down``: the service
may be gone already, and it leaves running jobs to its next start's recovery, which never
comes when the platform is being taken down)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from sciplat.errors import SciplatError
from sciplat.jobs.models.job import JobStatus
from sciplat.jobs.storage.store import JobStore
from sciplat.labs.backend import LabBackend
from sciplat.labs.models import LabState

STOPPED = "the platform was stopped (`sciplat down`) while this job was running; submit it again"


def stop_running_jobs(db_path: Path, labs: LabBackend) -> int:
    """Stop every job recorded as running (its process tree and cgroup, through the lab
    backend), mark it failed with the reason, and return how many there were."""
    if not db_path.exists():
        return 0
    store = JobStore(db_path)
    try:
        running = store.with_status(JobStatus.RUNNING)
        for job in running:
            state = LabState.from_dict(job.state) if job.state else None
            if state is not None:
                with contextlib.suppress(SciplatError, OSError):
                    asyncio.run(labs.stop(state, now=True))
            job.status, job.error, job.finished, job.state = (
                JobStatus.FAILED, STOPPED, time.time(), None
            )  # fmt: skip
            store.save(job)
    finally:
        store.close()
    return len(running)
