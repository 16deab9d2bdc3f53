"""Fixtures of the TAP tests: a small catalogue model, Hipparcos in DuckDB, a fake hub."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import requests
import uvicorn
from starlette.types import ASGIApp

from sciplat.tap.config import TapConfig
from sciplat.tap.models.catalogue import (
    Catalogue,
    ColumnInfo,
    SchemaInfo,
    SpatialIndex,
    TableInfo,
)
from sciplat.tap.storage.backend import CatalogueBackend
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.storage.hub import HubClient
from sciplat.tap.storage.postgres import PostgresBackend
from sciplat.tap.storage.readers import hipparcos_path, read_hipparcos
from sciplat.tap.tap_schema import with_tap_schema
from sciplat.tap.wiring import TapServices, build_tap
from tests.support.platform import free_ports

# token → what the fake hub's GET /hub/api/user answers
TOKENS = {
    "good-token": {"name": "ada", "groups": ["astro"], "scopes": ["access:services!service=tap"]},
    "broad-token": {"name": "bob", "groups": [], "scopes": ["access:services", "self"]},
    "narrow-token": {"name": "cy", "groups": [], "scopes": ["read:users:name!user=cy"]},
}


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    """hipparcos.main-like columns plus a private table, for translation tests."""
    cols = tuple(
        ColumnInfo(n, "double", unit="deg" if n in ("ra", "dec") else "")
        for n in ("hip", "ra", "dec", "hpmag", "healpix")
    )
    private = (ColumnInfo("id", "long"), ColumnInfo("ra", "double"), ColumnInfo("dec", "double"))
    return with_tap_schema(
        Catalogue(
            schemas=(SchemaInfo("hipparcos"), SchemaInfo("survey")),
            tables=(
                TableInfo("hipparcos", "main", cols, spatial=SpatialIndex("ra", "dec")),
                TableInfo("survey", "sources", private),
            ),
        )
    )


@pytest.fixture(scope="session")
def hipparcos_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalogue directory holding Hipparcos (small row groups, so cones skip most)."""
    directory = tmp_path_factory.mktemp("tap")
    backend = DuckDBBackend(directory, row_group_size=4096)
    info, data = read_hipparcos(hipparcos_path())
    backend.load_table(info, SchemaInfo("hipparcos", "demo"), data)
    backend.close()
    return directory


def fake_hub() -> HubClient:
    """A HubClient whose hub knows :data:`TOKENS` (an httpx mock, no network)."""

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("token ")
        if request.url.path != "/hub/api/user" or token not in TOKENS:
            return httpx.Response(403, json={"message": "no"})
        return httpx.Response(200, content=json.dumps(TOKENS[token]))

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return HubClient("http://hub.test/hub/api", 60, client)


@pytest.fixture
def tap_services(hipparcos_dir: Path) -> Iterator[TapServices]:
    """The service graph over the shared Hipparcos directory, anonymous access on."""
    config = TapConfig(public_schemas=["TAP_SCHEMA", "hipparcos"], default_maxrec=1000)
    backend = DuckDBBackend(hipparcos_dir)
    yield build_tap(config, hipparcos_dir, hub=fake_hub(), backend=backend)
    backend.close()


# The PostgreSQL the test machines run (trust authentication for postgres on loopback).
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"


@dataclass(frozen=True)
class PgDatabase:
    """A database of its own on the local PostgreSQL, with pgSphere, and a query role name."""

    dsn: str
    name: str
    query_role: str


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgDatabase]:
    """A uniquely named database (dropped at the end, with its query role); skips without
    PostgreSQL at 127.0.0.1:5432 or without pgSphere on it."""
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    db = PgDatabase(
        dsn=f"host=127.0.0.1 port=5432 user=postgres dbname=sciplat_tap_{suffix}",
        name=f"sciplat_tap_{suffix}",
        query_role=f"sciplat_tap_q_{suffix}",
    )
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 as postgres: {exc}")
    with admin:
        found = admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_sphere'"
        ).fetchone()
        if found is None:
            pytest.skip("pgSphere is not installed on the PostgreSQL server: apt-get install "
                        "postgresql-15-pgsphere (scripts/bootstrap.sh test does)")  # fmt: skip
        admin.execute(f'CREATE DATABASE "{db.name}"')
        try:
            with psycopg.connect(db.dsn, autocommit=True) as probe:
                probe.execute("CREATE EXTENSION pg_sphere")
        except psycopg.Error as exc:
            admin.execute(f'DROP DATABASE "{db.name}" WITH (FORCE)')
            pytest.skip(f"pgSphere cannot be created ({exc}): run scripts/bootstrap.sh test")
        try:
            yield db
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{db.query_role}"')


@pytest.fixture(scope="session")
def pg_hipparcos(pg_database: PgDatabase) -> Iterator[PostgresBackend]:
    """Hipparcos in the session's PostgreSQL database (metadata re-read on every query)."""
    backend = PostgresBackend(pg_database.dsn, pg_database.query_role, metadata_seconds=0)
    info, data = read_hipparcos(hipparcos_path())
    backend.load_table(info, SchemaInfo("hipparcos", "demo"), data)
    yield backend
    backend.close()


@pytest.fixture(params=["duckdb", "postgres"])
def any_backend(request: pytest.FixtureRequest, hipparcos_dir: Path) -> Iterator[CatalogueBackend]:
    """Hipparcos in each catalogue backend in turn: DuckDB, then PostgreSQL + pgSphere."""
    if request.param == "postgres":
        yield request.getfixturevalue("pg_hipparcos")
        return
    backend = DuckDBBackend(hipparcos_dir)
    yield backend
    backend.close()


@pytest.fixture
async def started_tap(
    hipparcos_dir: Path, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[TapServices]]]:
    """Builds TAP services over Hipparcos with their job workers running (as the app's
    lifespan would), jobs under ``tmp_path/jobs``: call it with TapConfig settings. Stops
    every one it made."""
    made: list[TapServices] = []

    async def make(**settings: Any) -> TapServices:
        config = TapConfig(**{"default_maxrec": 1000, **settings})
        backend = DuckDBBackend(hipparcos_dir)
        services = build_tap(config, tmp_path, hub=fake_hub(), backend=backend,
                             jobs_dir=tmp_path / "jobs")  # fmt: skip
        await services.jobs.start()
        made.append(services)
        return services

    yield make
    for services in made:
        await services.jobs.stop()
        services.jobs.store.close()
        services.backend.close()


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """``app`` under uvicorn (lifespan included, so job workers run) on a free loopback port,
    in a thread; yields the TAP base URL, ``http://127.0.0.1:PORT/api/tap``."""
    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert thread.is_alive(), "uvicorn exited"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/api/tap"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def bearer_session(token: str) -> requests.Session:
    """A requests session (what pyvo uses) that sends ``token`` as a bearer token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session
