"""Async TAP (UWS 1.1) through the ASGI app: jobs, phases, WAIT, owners, limits, restarts."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from astropy.io.votable import parse

from sciplat.tap.app import create_app
from sciplat.tap.models.job import Phase
from sciplat.tap.models.query import Caller
from sciplat.tap.storage.jobs import JobStore
from sciplat.tap.wiring import TapServices

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
ADA = {"Authorization": "Bearer good-token"}
BOB = {"Authorization": "Bearer broad-token"}
QUICK = "SELECT TOP 3 hip, hpmag FROM hipparcos.main ORDER BY hip"
# 118,218² rows: minutes of work, so only an interrupt ends it within a test's time
LONG = (
    "SELECT SUM(SIN(a.ra) * COS(b.dec)) AS s FROM hipparcos.main AS a "
    "CROSS JOIN hipparcos.main AS b"
)

Make = Callable[..., Awaitable[TapServices]]


async def _client(services: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as client:
        yield client


@pytest.fixture
async def tap(started_tap: Make) -> TapServices:
    return await started_tap()


@pytest.fixture
async def client(tap: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(tap):
        yield c


async def _submit(client: httpx.AsyncClient, query: str, headers: dict[str, str] = ADA,
                  **params: str) -> str:  # fmt: skip
    r = await client.post("/api/tap/async", data={"LANG": "ADQL", "QUERY": query, **params},
                          headers=headers)  # fmt: skip
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith("http://tap.test/api/tap/async/")
    return location.removeprefix("http://tap.test")


def _job(text: str) -> ET.Element:
    root = ET.fromstring(text)  # noqa: S314 - our own service's document
    assert root.tag == f"{UWS}job"
    assert root.get("version") == "1.1"
    return root


def _phase(root: ET.Element) -> str:
    return root.findtext(f"{UWS}phase") or ""


async def _wait_final(client: httpx.AsyncClient, url: str, headers: dict[str, str] = ADA,
                      limit: float = 60) -> ET.Element:  # fmt: skip
    deadline = time.monotonic() + limit
    while True:
        r = await client.get(url, params={"WAIT": "5"}, headers=headers)
        root = _job(r.text)
        if _phase(root) in ("COMPLETED", "ERROR", "ABORTED"):
            return root
        assert time.monotonic() < deadline, f"job still {_phase(root)}"


async def test_job_runs_to_a_result(client: httpx.AsyncClient) -> None:
    url = await _submit(client, QUICK, MAXREC="2")
    assert (await client.get(f"{url}/phase", headers=ADA)).text == "PENDING"
    r = await client.post(f"{url}/phase", data={"PHASE": "RUN"}, headers=ADA)
    assert r.status_code == 303
    root = await _wait_final(client, url)
    assert _phase(root) == "COMPLETED"
    assert root.findtext(f"{UWS}ownerId") == "ada"
    assert root.findtext(f"{UWS}startTime") and root.findtext(f"{UWS}endTime")
    params = {p.get("id"): p.text for p in root.iter(f"{UWS}parameter")}
    assert params == {"lang": "ADQL", "query": QUICK, "maxrec": "2"}
    result = root.find(f"{UWS}results/{UWS}result")
    assert result is not None
    href = result.get("{http://www.w3.org/1999/xlink}href") or ""
    assert href.endswith(f"{url}/results/result")
    r = await client.get(href.removeprefix("http://tap.test"), headers=ADA)
    assert r.headers["content-type"].startswith("application/x-votable+xml")
    assert int(result.get("size") or 0) == len(r.content)
    votable = parse(io.BytesIO(r.content))
    assert list(votable.get_first_table().to_table()["hip"]) == [1, 2]
    assert [i.value for i in votable.resources[0].infos] == ["OK", "OVERFLOW"]


async def test_phase_run_at_creation_and_csv(client: httpx.AsyncClient) -> None:
    url = await _submit(client, QUICK, PHASE="RUN", RESPONSEFORMAT="csv")
    assert _phase(await _wait_final(client, url)) == "COMPLETED"
    r = await client.get(f"{url}/results/result", headers=ADA)
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0] == '"hip","hpmag"'


async def test_bad_query_ends_in_error_with_the_message(client: httpx.AsyncClient) -> None:
    url = await _submit(client, "SELECT hpmg FROM hipparcos.main", PHASE="RUN")
    root = await _wait_final(client, url)
    assert _phase(root) == "ERROR"
    message = root.findtext(f"{UWS}errorSummary/{UWS}message") or ""
    assert "Did you mean hpmag" in message
    r = await client.get(f"{url}/error", headers=ADA)
    info = parse(io.BytesIO(r.content)).resources[0].infos[0]
    assert (info.value, info.content) == ("ERROR", message)


async def test_bad_parameters_end_the_job_in_error(client: httpx.AsyncClient) -> None:
    for params, message in (
        ({"FORMAT": "fits"}, "RESPONSEFORMAT=fits is not supported"),
        ({"LANG": "SQL"}, "LANG=SQL is not supported"),
        ({"MAXREC": "lots"}, "MAXREC=lots is not a whole number"),
    ):
        url = await _submit(client, QUICK, PHASE="RUN", **params)
        root = await _wait_final(client, url)
        assert _phase(root) == "ERROR"
        assert message in (root.findtext(f"{UWS}errorSummary/{UWS}message") or "")


async def test_abort_stops_the_query_in_the_database(started_tap: Make) -> None:
    services = await started_tap(async_workers=1)
    async for client in _client(services):
        url = await _submit(client, LONG, PHASE="RUN")
        deadline = time.monotonic() + 30
        while (await client.get(url, params={"WAIT": "5"}, headers=ADA)).text.count(
            "EXECUTING"
        ) == 0:
            assert time.monotonic() < deadline
        r = await client.post(url, data={"PHASE": "ABORT"}, headers=ADA)
        assert r.status_code == 303
        assert _phase(_job((await client.get(url, headers=ADA)).text)) == "ABORTED"
        # the only worker is free again at once: the query was interrupted, not abandoned
        started = time.monotonic()
        quick = await _submit(client, QUICK, PHASE="RUN")
        assert _phase(await _wait_final(client, quick, limit=20)) == "COMPLETED"
        assert time.monotonic() - started < 20


async def test_execution_duration_stops_the_query(started_tap: Make) -> None:
    services = await started_tap(async_workers=1)
    async for client in _client(services):
        url = await _submit(client, LONG)
        r = await client.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "1"},
                              headers=ADA)  # fmt: skip
        assert r.status_code == 303
        assert (await client.get(f"{url}/executionduration", headers=ADA)).text == "1"
        await client.post(f"{url}/phase", data={"PHASE": "RUN"}, headers=ADA)
        started = time.monotonic()
        root = await _wait_final(client, url, limit=30)
        assert _phase(root) == "ERROR"
        assert "longer than 1 s" in (root.findtext(f"{UWS}errorSummary/{UWS}message") or "")
        assert time.monotonic() - started < 20


async def test_quota_seconds_cap_the_execution_duration(tap: TapServices) -> None:
    caller = Caller("ada", max_seconds=2.0)
    job = tap.jobs.create(caller, {"QUERY": QUICK}, {})
    assert tap.query.timeout(caller, job.execution_duration) == 2.0


async def test_another_users_job_is_not_found(client: httpx.AsyncClient) -> None:
    url = await _submit(client, QUICK)
    for path in ("", "/phase", "/parameters", "/results", "/results/result", "/error"):
        r = await client.get(f"{url}{path}", headers=BOB)
        assert r.status_code == 404, path
        assert "no job" in r.text
    run = await client.post(f"{url}/phase", data={"PHASE": "RUN"}, headers=BOB)
    assert run.status_code == 404
    assert (await client.delete(url, headers=BOB)).status_code == 404
    assert "jobref" not in (await client.get("/api/tap/async", headers=BOB)).text
    assert (await client.get(f"{url}/phase", headers=ADA)).text == "PENDING"
    # without a token: not found either (the job belongs to ada)
    assert (await client.get(url)).status_code == 404


async def test_anonymous_jobs_are_reachable_only_by_id(client: httpx.AsyncClient) -> None:
    url = await _submit(client, QUICK, headers={}, PHASE="RUN")
    assert _phase(await _wait_final(client, url, headers={})) == "COMPLETED"
    assert "jobref" not in (await client.get("/api/tap/async")).text
    assert (await client.get(url, headers=ADA)).status_code == 404


async def test_job_list_filters(client: httpx.AsyncClient, tap: TapServices) -> None:
    first = await _submit(client, QUICK, PHASE="RUN")
    await _wait_final(client, first)
    second = await _submit(client, QUICK)
    third = await _submit(client, QUICK)

    async def ids(**params: str) -> list[str]:
        r = await client.get("/api/tap/async", params=params, headers=ADA)
        root = ET.fromstring(r.text)  # noqa: S314 - our own service's document
        assert root.tag == f"{UWS}jobs"
        return [ref.get("id") or "" for ref in root.iter(f"{UWS}jobref")]

    key = [u.rsplit("/", 1)[1] for u in (first, second, third)]
    assert await ids() == key
    assert await ids(PHASE="PENDING") == key[1:]
    assert sorted(await ids(PHASE="COMPLETED") + await ids(phase="pending")) == sorted(key)
    assert await ids(LAST="2") == [key[2], key[1]]
    created = tap.jobs.store.get(key[0])
    assert created is not None
    later = (created.created + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await ids(AFTER=later) == []
    r = await client.get("/api/tap/async", params={"PHASE": "DONE"}, headers=ADA)
    assert "PHASE must be one of" in r.text


async def test_delete_and_destruction(client: httpx.AsyncClient, tap: TapServices) -> None:
    url = await _submit(client, QUICK, PHASE="RUN")
    await _wait_final(client, url)
    job_id = url.rsplit("/", 1)[1]
    files = tap.jobs.store.files / job_id
    assert (files / "result").exists()
    r = await client.post(url, data={"ACTION": "DELETE"}, headers=ADA)
    assert r.status_code == 303
    assert r.headers["location"].endswith("/api/tap/async")
    assert (await client.get(url, headers=ADA)).status_code == 404
    assert not files.exists()

    other = await _submit(client, QUICK)
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    never = "2999-01-01T00:00:00Z"
    await client.post(f"{other}/destruction", data={"DESTRUCTION": never}, headers=ADA)
    kept = (await client.get(f"{other}/destruction", headers=ADA)).text
    assert kept < "2999" and kept > soon  # a later time is cut to job_retention_days
    await client.post(f"{other}/destruction", data={"DESTRUCTION": soon}, headers=ADA)
    assert (await client.get(f"{other}/destruction", headers=ADA)).text == soon
    tap.jobs.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    assert tap.jobs.cleanup() == 1
    assert (await client.get(other, headers=ADA)).status_code == 404
    assert (await client.delete(other, headers=ADA)).status_code == 404


async def test_parameters_change_only_while_pending(client: httpx.AsyncClient) -> None:
    url = await _submit(client, QUICK)
    r = await client.post(f"{url}/parameters", data={"MAXREC": "1"}, headers=ADA)
    assert r.status_code == 303
    await client.post(f"{url}/phase", data={"PHASE": "RUN"}, headers=ADA)
    await _wait_final(client, url)
    r = await client.post(f"{url}/parameters", data={"MAXREC": "2"}, headers=ADA)
    assert r.status_code == 409
    assert "only while it is PENDING" in r.text
    body = (await client.get(f"{url}/results/result", headers=ADA)).content
    assert len(parse(io.BytesIO(body)).get_first_table().to_table()) == 1


async def test_too_many_jobs_are_refused(started_tap: Make) -> None:
    services = await started_tap(max_jobs_per_user=2)
    async for client in _client(services):
        await _submit(client, QUICK)
        await _submit(client, QUICK)
        r = await client.post("/api/tap/async", data={"QUERY": QUICK}, headers=ADA)
        assert r.status_code == 403
        assert "delete finished ones" in r.text


async def test_jobs_survive_a_restart(started_tap: Make) -> None:
    first = await started_tap(async_workers=1)
    ada = Caller("ada")
    done = first.jobs.create(ada, {"QUERY": QUICK}, {})
    await first.jobs.run(ada, done.id)
    await first.jobs.wait(ada, done.id, 30, "QUEUED")
    final = await first.jobs.wait(ada, done.id, 30, "EXECUTING")
    assert final.phase == Phase.COMPLETED
    queued = first.jobs.create(ada, {"QUERY": QUICK}, {})
    running = first.jobs.create(ada, {"QUERY": QUICK}, {})
    await first.jobs.stop()  # the workers are gone; now make the records a crash would leave
    first.backend.close()  # one process opens a DuckDB file once (its settings are locked)
    first.jobs.store.update(queued.id, phase=Phase.QUEUED)
    first.jobs.store.update(running.id, phase=Phase.EXECUTING)

    second = await started_tap(async_workers=1)
    crashed = second.jobs.get(ada, running.id)
    assert crashed.phase == Phase.ERROR
    assert "restarted while this job was running" in (crashed.error or "")
    requeued = await second.jobs.wait(ada, queued.id, 30, "QUEUED")
    if requeued.phase == Phase.EXECUTING:
        requeued = await second.jobs.wait(ada, queued.id, 30, "EXECUTING")
    assert requeued.phase == Phase.COMPLETED
    _, body = second.jobs.result(ada, done.id)
    assert list(parse(io.BytesIO(body)).get_first_table().to_table()["hip"]) == [1, 2, 3]


def test_job_store_writes_nothing_until_used(tmp_path: Path) -> None:
    store = JobStore(tmp_path)  # as `sciplat catalog load` builds it, never touching jobs
    assert list(tmp_path.iterdir()) == []
    assert store.for_owner("ada") == []
    assert (tmp_path / "jobs.sqlite").exists()
    store.close()
