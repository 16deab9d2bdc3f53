"""Job records and cache entries persist in SQLite (no platform)."""

from __future__ import annotations

from pathlib import Path

from sciplat.jobs.models.job import CacheEntry, Job, JobStatus
from sciplat.jobs.storage.store import JobStore


def job(job_id: str, user: str = "ann", created: float = 1.0) -> Job:
    return Job(
        id=job_id, user=user, status=JobStatus.QUEUED, notebook="a.ipynb",
        parameters={"n": 1}, environment="test", size="tiny", timeout=60, created=created,
        result_dir=f"/home/{user}/.sciplat/jobs/{job_id}",
    )  # fmt: skip


def test_jobs_and_their_notebooks_survive_reopening(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    store.save(job("a1", created=1), ("{notebook}", "/home/ann"))
    store.save(job("a2", created=2))
    store.save(job("b1", user="bob"))
    running = job("a3", created=3)
    running.status, running.state = JobStatus.RUNNING, {"pid": 42}
    store.save(running)
    store.close()

    again = JobStore(tmp_path / "jobs.sqlite")
    assert [j.id for j in again.of_user("ann")] == ["a3", "a2", "a1"]
    assert again.get("a3") == running
    assert again.input_of("a1") == ("{notebook}", "/home/ann")
    assert [j.id for j in again.with_status(JobStatus.RUNNING)] == ["a3"]
    assert again.get("nope") is None


def test_a_finished_job_drops_its_kept_notebook(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    j = job("a1")
    store.save(j, ("{notebook}", "/home/ann"))
    j.status = JobStatus.DONE
    store.save(j)
    assert store.input_of("a1") is None


def test_cache_entries_are_per_user(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    store.cache_put(CacheEntry("ann", "k1", "a1", 5.0, "/home/ann/.sciplat/jobs/a1"))
    assert store.cache_get("ann", "k1") is not None
    assert store.cache_get("bob", "k1") is None
    assert [e.key for e in store.cache_of("ann")] == ["k1"]
    assert not store.cache_drop("bob", "k1")
    assert store.cache_drop("ann", "k1")
    assert store.cache_get("ann", "k1") is None
