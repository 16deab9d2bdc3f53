"""End to end with pyvo against uvicorn: sync, async jobs, uploads, overflow, errors, owners."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from astropy.table import Table

from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import build_tap
from tests.tap.conftest import bearer_session, fake_hub, serving
from tests.tap.test_upload import JOIN, targets

pyvo = pytest.importorskip("pyvo")


@pytest.fixture(scope="module")
def tap_url(hipparcos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app under uvicorn (its lifespan runs the job workers), jobs in a fresh directory."""
    jobs = tmp_path_factory.mktemp("jobs")
    config = TapConfig(default_maxrec=1000)
    backend = DuckDBBackend(hipparcos_dir)
    app = create_app(build_tap(config, jobs, hub=fake_hub(), backend=backend, jobs_dir=jobs))
    with serving(app) as url:
        yield url
    backend.close()


@pytest.fixture(scope="module")
def service(tap_url: str) -> pyvo.dal.TAPService:
    return pyvo.dal.TAPService(tap_url, session=bearer_session("good-token"))


def test_sync(service: pyvo.dal.TAPService) -> None:
    table = service.run_sync("SELECT TOP 3 hip FROM hipparcos.main ORDER BY hip").to_table()
    assert list(table["hip"]) == [1, 2, 3]


def test_async_submit_run_wait_fetch_delete(service: pyvo.dal.TAPService) -> None:
    job = service.submit_job("SELECT TOP 5 hip, hpmag FROM hipparcos.main ORDER BY hip")
    assert job.phase == "PENDING"
    assert job.owner == "ada"
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED"
    job.raise_if_error()
    table = job.fetch_result().to_table()
    assert list(table["hip"]) == [1, 2, 3, 4, 5]
    url = job.url
    job.delete()
    r = requests.get(url, headers={"Authorization": "Bearer good-token"}, timeout=10)
    assert r.status_code == 404


def test_run_async_with_maxrec_overflow(service: pyvo.dal.TAPService) -> None:
    result = service.run_async("SELECT hip FROM hipparcos.main", maxrec=10)
    assert len(result) == 10
    assert result.query_status == "OVERFLOW"


def test_upload_join_sync_and_async(service: pyvo.dal.TAPService) -> None:
    uploads: dict[str, Table] = {"targets": targets()}
    for run in (service.run_sync, service.run_async):
        table = run(JOIN, uploads=uploads).to_table()
        assert list(table["hip"]) == [17573, 17702], run.__name__
        assert [str(n) for n in table["name"]] == ["Maia", "Alcyone"]


def test_bad_query_message_sync_and_async(service: pyvo.dal.TAPService) -> None:
    bad = "SELECT hpmg FROM hipparcos.main"
    with pytest.raises(pyvo.dal.DALQueryError, match="Did you mean hpmag"):
        service.run_sync(bad)
    with pytest.raises(pyvo.dal.DALQueryError, match="Did you mean hpmag"):
        service.run_async(bad)


def test_another_users_job_is_not_theirs(service: pyvo.dal.TAPService, tap_url: str) -> None:
    job = service.submit_job("SELECT TOP 1 hip FROM hipparcos.main")
    with pytest.raises(pyvo.dal.DALServiceError, match="404"):
        pyvo.dal.AsyncTAPJob(job.url, session=bearer_session("broad-token"))
    bob = pyvo.dal.TAPService(tap_url, session=bearer_session("broad-token"))
    assert all(ref.jobid != job.job_id for ref in bob.get_job_list())
    assert job.job_id in [ref.jobid for ref in service.get_job_list()]
    job.delete()
