"""Fixtures of the TAP tests: a small catalogue model, Hipparcos in DuckDB, a fake hub."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sciplat.tap.config import TapConfig
from sciplat.tap.models.catalogue import (
    Catalogue,
    ColumnInfo,
    SchemaInfo,
    SpatialIndex,
    TableInfo,
)
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.storage.hub import HubClient
from sciplat.tap.storage.readers import hipparcos_path, read_hipparcos
from sciplat.tap.tap_schema import with_tap_schema
from sciplat.tap.wiring import TapServices, build_tap

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
