"""The TAP app through an ASGI client: /sync, VOSI, errors, authentication."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from astropy.io.votable import parse

from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import TapServices, build_tap
from tests.tap.conftest import fake_hub

CONE = (
    "SELECT TOP 5 hip, ra, dec, hpmag FROM hipparcos.main WHERE "
    "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 1.0)) ORDER BY hpmag"
)


async def _client(services: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as client:
        yield client


@pytest.fixture
async def client(tap_services: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(tap_services):
        yield c


def _status(body: bytes) -> tuple[str, str]:
    info = parse(io.BytesIO(body)).resources[0].infos[0]
    return info.value, info.content or ""


async def test_cone_search_votable(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/tap/sync", data={"LANG": "ADQL", "QUERY": CONE})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-votable+xml")
    table = parse(io.BytesIO(r.content)).get_first_table().to_table()
    assert list(table["hip"]) == [17702, 17847, 17499, 17573, 17608]  # Alcyone first
    assert str(table["ra"].unit) == "deg"
    assert table["hpmag"].meta["ucd"] == "phot.mag;em.opt"


async def test_parameter_names_are_case_insensitive_and_get_works(
    client: httpx.AsyncClient,
) -> None:
    params = {"lang": "ADQL", "query": CONE, "responseformat": "csv"}
    r = await client.get("/api/tap/sync", params=params)
    assert r.text.splitlines()[:2] == ['"hip","ra","dec","hpmag"', "17702,56.87110080609735,"
                                       "24.105241794306835,2.848"]  # fmt: skip


@pytest.mark.parametrize(
    ("fmt", "body"),
    [("votable/td", "<TABLEDATA>"), ("application/x-votable+xml", "<BINARY2>"),
     ("application/x-votable+xml;serialization=TABLEDATA", "<TABLEDATA>")],
)  # fmt: skip
async def test_votable_serializations(client: httpx.AsyncClient, fmt: str, body: str) -> None:
    r = await client.get("/api/tap/sync", params={"QUERY": CONE, "FORMAT": fmt})
    assert body in r.text
    assert parse(io.BytesIO(r.content)).get_first_table().to_table()["hip"][0] == 17702


async def test_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/tap/sync", params={"QUERY": CONE, "FORMAT": "json"})
    doc = r.json()
    assert doc["data"][0][0] == 17702
    assert doc["metadata"][1] == {"name": "ra", "datatype": "double", "unit": "deg",
                                  "ucd": "pos.eq.ra;meta.main",
                                  "description": "Right ascension (ICRS, Ep=1991.25)"}  # fmt: skip


async def test_maxrec_overflow(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/tap/sync", params={"QUERY": "SELECT hip FROM hipparcos.main", "MAXREC": "7"}
    )
    vot = parse(io.BytesIO(r.content))
    assert len(vot.get_first_table().to_table()) == 7
    assert [i.value for i in vot.resources[0].infos] == ["OK", "OVERFLOW"]


async def test_unknown_column_error_is_a_votable_a_scientist_can_read(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/api/tap/sync", params={"QUERY": "SELECT hpmg FROM hipparcos.main"})
    assert r.status_code == 200
    status, message = _status(r.content)
    assert status == "ERROR"
    assert message.startswith("column 'hpmg' is not in hipparcos.main. Did you mean hpmag")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"QUERY": "SELECT 1 FROM hipparcos.main; DROP TABLE x"}, "exactly one query"),
        ({"QUERY": "SELECT * FROM information_schema.tables"}, "is not available"),
        ({"QUERY": "SELECT hip FROM hipparcos.main", "LANG": "SQL"}, "LANG=SQL"),
        ({"QUERY": "SELECT hip FROM hipparcos.main", "FORMAT": "fits"}, "RESPONSEFORMAT=fits"),
        ({"QUERY": "SELECT hip FROM hipparcos.main", "MAXREC": "lots"}, "MAXREC=lots"),
        ({"QUERY": "SELECT hip FROM hipparcos.main", "UPLOAD": "t,param:t"}, "UPLOAD"),
        ({}, "QUERY parameter is empty"),
        (
            {"QUERY": "SELECT CAST(LOWER('x') AS INTEGER) FROM hipparcos.main"},
            "the database could not run the query",
        ),
    ],
)
async def test_bad_requests(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    r = await client.get("/api/tap/sync", params=params)
    assert r.status_code == 200
    status, text = _status(r.content)
    assert status == "ERROR"
    assert message in text


async def test_tap_schema_is_queryable(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/api/tap/sync",
        params={"QUERY": "SELECT unit FROM TAP_SCHEMA.columns WHERE column_name = 'pmra'",
                "FORMAT": "csv"},
    )  # fmt: skip
    assert r.text.splitlines() == ['"unit"', '"mas/yr"']


async def test_vosi(client: httpx.AsyncClient) -> None:
    caps = await client.get("/api/tap/capabilities")
    assert '<accessURL use="base">http://tap.test/api/tap</accessURL>' in caps.text
    avail = await client.get("/api/tap/availability")
    assert "<vosi:available>true</vosi:available>" in avail.text
    tables = await client.get("/api/tap/tables")
    assert "<name>hipparcos.main</name>" in tables.text
    assert "<unit>mas/yr</unit>" in tables.text


@pytest.fixture
async def private_client(tap_services: TapServices) -> AsyncIterator[httpx.AsyncClient]:
    config = TapConfig(anonymous=False)
    backend = DuckDBBackend(tap_services.backend.directory)  # type: ignore[attr-defined]
    services = build_tap(config, backend.directory, hub=fake_hub(), backend=backend)
    async for c in _client(services):
        yield c
    backend.close()


QUERY = {"QUERY": "SELECT TOP 1 hip FROM hipparcos.main"}


async def test_anonymous_refused_when_configured(private_client: httpx.AsyncClient) -> None:
    r = await private_client.get("/api/tap/sync", params=QUERY)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "needs a JupyterHub API token" in _status(r.content)[1]


@pytest.mark.parametrize("token", ["good-token", "broad-token"])
async def test_hub_token_accepted(private_client: httpx.AsyncClient, token: str) -> None:
    r = await private_client.get(
        "/api/tap/sync", params=QUERY, headers={"Authorization": f"Bearer {token}"}
    )
    assert _status(r.content)[0] == "OK"


@pytest.mark.parametrize(
    ("header", "code", "message"),
    [
        ("Bearer nonsense", 401, "not valid"),
        ("Bearer narrow-token", 403, "lacks the scope access:services!service=tap"),
        ("Basic dXNlcjpwdw==", 401, "Authorization: Bearer"),
    ],
)
async def test_bad_tokens(
    private_client: httpx.AsyncClient, header: str, code: int, message: str
) -> None:
    r = await private_client.get("/api/tap/sync", params=QUERY, headers={"Authorization": header})
    assert r.status_code == code
    assert message in _status(r.content)[1]


async def test_anonymous_callers_see_only_public_schemas(tap_services: TapServices) -> None:
    config = TapConfig(public_schemas=["TAP_SCHEMA"])
    backend = DuckDBBackend(tap_services.backend.directory)  # type: ignore[attr-defined]
    services = build_tap(config, backend.directory, hub=fake_hub(), backend=backend)
    async for c in _client(services):
        anonymous = await c.get("/api/tap/sync", params=QUERY)
        assert "is not available" in _status(anonymous.content)[1]
        user = await c.get(
            "/api/tap/sync", params=QUERY, headers={"Authorization": "Bearer good-token"}
        )
        assert _status(user.content)[0] == "OK"
    backend.close()
