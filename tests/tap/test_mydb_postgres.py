"""MyDB on the PostgreSQL + pgSphere backend: user tables are real tables in the user's schema
(read in place; per-caller TAP_SCHEMA reaches the query as pg_temp tables), and saving,
sharing, joins and TAP_SCHEMA work as on DuckDB."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig
from sciplat.tap.storage.postgres import PostgresBackend
from sciplat.tap.wiring import build_tap
from tests.tap.conftest import TOKENS, fake_hub
from tests.tap.test_mydb import CSV, auth, put_csv, query


@pytest.fixture(scope="module", autouse=True)
def _tokens() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(TOKENS, "mydb-eve", {"name": "eve", "groups": ["astro"], "scopes": []})
        mp.setitem(TOKENS, "mydb-mal", {"name": "mal", "groups": ["other"], "scopes": []})
        yield


def in_database(backend: PostgresBackend, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(backend.dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
async def client(pg_hipparcos: PostgresBackend, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    services = build_tap(TapConfig(default_maxrec=1000, required_scope=""), tmp_path,
                         hub=fake_hub(), backend=pg_hipparcos, mydb_dir=tmp_path)  # fmt: skip
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as c:
        yield c
    services.mydb.store.close()


async def test_user_tables_on_postgres(
    client: httpx.AsyncClient, pg_hipparcos: PostgresBackend, tmp_path: Path
) -> None:
    q = ("SELECT t.id, h.hip FROM user_ada.marks AS t JOIN hipparcos.main AS h "
         "ON h.hip = t.id + 1 ORDER BY t.id")  # fmt: skip
    missing = await query(client, q, "mydb-mal")
    assert "is not available" in missing
    assert (await put_csv(client, "user_ada.marks", body=CSV)).status_code == 201
    assert in_database(pg_hipparcos, "SELECT count(*), max(note) FROM user_ada.marks") == [
        (3, "pleiades")
    ]
    # read in place: the query does not need the Parquet file (DuckDB's path)
    (tmp_path / "mydb" / "user_ada" / "marks.parquet").rename(tmp_path / "moved.parquet")
    assert (await query(client, q)).splitlines()[1:] == ["1,2", "2,3", "3,4"]
    assert await query(client, q, "mydb-eve") == missing
    r = await client.post("/api/tap/tables/user_ada.marks/sharing", headers=auth("good-token"),
                          data={"group": "astro"})  # fmt: skip
    assert r.status_code == 200
    assert (await query(client, q, "mydb-eve")).splitlines()[1:] == ["1,2", "2,3", "3,4"]
    text = await query(client, "SELECT user_ada.marks.note FROM user_ada.marks "
                       "WHERE user_ada.marks.id = 3", "mydb-eve")  # fmt: skip
    assert text.splitlines() == ["note", "origin"]
    listed = await query(client, "SELECT table_name FROM TAP_SCHEMA.tables "
                         "WHERE schema_name = 'user_ada'", "mydb-eve")  # fmt: skip
    assert listed.splitlines()[1:] == ["user_ada.marks"]
    assert "user_ada" not in await query(client, "SELECT * FROM TAP_SCHEMA.tables", "mydb-mal")
    assert await query(client, q, "mydb-mal") == missing
    r = await client.delete("/api/tap/tables/user_ada.marks", headers=auth("good-token"))
    assert r.status_code == 204
    assert in_database(pg_hipparcos, "SELECT to_regclass('user_ada.marks') IS NULL") == [(True,)]
    assert await query(client, q, "mydb-eve") == missing
