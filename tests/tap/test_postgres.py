"""The PostgreSQL + pgSphere backend on a database of its own: index use, cancellation in the
database, the query role's limits, loads, reloads, and ``sciplat catalog load`` through it."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pyarrow as pa
import pytest
from astropy.io.votable import parse

from sciplat.errors import ConfigError
from sciplat.tap.adql.translate import translate
from sciplat.tap.app import create_app
from sciplat.tap.cli import catalog_load
from sciplat.tap.config import TapConfig
from sciplat.tap.errors import AdqlSyntaxError, QueryFailedError, UnknownTableError
from sciplat.tap.models.catalogue import ColumnInfo, SchemaInfo, SpatialIndex, TableInfo
from sciplat.tap.storage.backend import QueryCancel
from sciplat.tap.storage.postgres import PostgresBackend
from sciplat.tap.storage.watchdog import Watchdog
from sciplat.tap.wiring import build_tap
from tests.tap.conftest import PgDatabase, fake_hub

CONE = "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(56.75, 24.12, 1))"
CONE_TOP5 = (
    "SELECT TOP 5 hip, ra, dec, hpmag FROM hipparcos.main WHERE "
    "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 1.0)) ORDER BY hpmag"
)
# 118k x 118k rows: minutes of work, so only a cancel ends it in time
SLOW = 'SELECT COUNT(*) FROM "hipparcos"."main" AS a, "hipparcos"."main" AS b WHERE a.plx > b.plx'


def _owner(db: PgDatabase) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(db.dsn, autocommit=True)


def _active(db: PgDatabase) -> list[str]:
    """Statements the query role is running now."""
    with _owner(db) as conn:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE usename = %s AND state = 'active'",
            (db.query_role,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def _wait_idle(db: PgDatabase, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while (active := _active(db)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return active


def test_cone_uses_the_pgsphere_index(
    pg_hipparcos: PostgresBackend, pg_database: PgDatabase
) -> None:
    sql = translate(CONE, pg_hipparcos.catalogue(), dialect="postgres").sql
    assert "<@ SCIRCLE(SPOINT(" in sql
    with _owner(pg_database) as conn:
        plan = "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql).fetchall())
    assert "main_spoint" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_timeout_cancels_the_statement_in_the_database(
    pg_hipparcos: PostgresBackend, pg_database: PgDatabase
) -> None:
    started = time.monotonic()
    with pytest.raises(QueryFailedError, match=r"longer than 0\.5 s"):
        pg_hipparcos.run(SLOW, 0.5)
    assert time.monotonic() - started < 10
    assert _wait_idle(pg_database) == []
    # the pooled connection's limit follows each query's, it does not stick at 0.5 s
    assert pg_hipparcos.run("SELECT pg_sleep(0.7) IS NULL AS slept", 5).to_pylist() == [
        {"slept": False}
    ]


def test_watchdog_calls_at_the_deadline_unless_removed() -> None:
    watchdog = Watchdog()
    fired: list[str] = []
    done = threading.Event()
    kept = watchdog.add(0.2, lambda: (fired.append("kept"), done.set()))
    removed = watchdog.add(0.1, lambda: fired.append("removed"))
    watchdog.remove(removed)
    assert done.wait(10)
    assert fired == ["kept"]
    watchdog.remove(kept)  # already run: a no-op


def test_query_cancel_stops_the_statement_in_the_database(
    pg_hipparcos: PostgresBackend, pg_database: PgDatabase
) -> None:
    cancel = QueryCancel()

    def cancel_once_running() -> None:
        deadline = time.monotonic() + 20
        while not any("a.plx > b.plx" in q for q in _active(pg_database)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        cancel.set()

    thread = threading.Thread(target=cancel_once_running)
    thread.start()
    with pytest.raises(QueryFailedError, match="aborted"):
        pg_hipparcos.run(SLOW, 60, cancel=cancel)
    thread.join()
    assert _wait_idle(pg_database) == []


@pytest.mark.parametrize(
    "adql",
    [
        "SELECT * FROM pg_catalog.pg_class",
        "SELECT * FROM information_schema.tables",
        "SELECT rolname FROM pg_roles",
        "SELECT * FROM sciplat_meta.spatial",
        "SELECT * FROM public.spatial_ref_sys",
    ],
)
def test_translated_queries_cannot_name_system_tables(
    pg_hipparcos: PostgresBackend, adql: str
) -> None:
    with pytest.raises(UnknownTableError, match="not available"):
        translate(adql, pg_hipparcos.catalogue(), dialect="postgres")


@pytest.mark.parametrize(
    "adql",
    [
        "SELECT pg_sleep(10) FROM hipparcos.main",
        "SELECT current_setting('data_directory') FROM hipparcos.main",
        "SELECT pg_read_file('/etc/passwd') FROM hipparcos.main",
        "SELECT set_config('default_transaction_read_only', 'off', false) FROM hipparcos.main",
    ],
)
def test_translated_queries_cannot_call_system_functions(
    pg_hipparcos: PostgresBackend, adql: str
) -> None:
    with pytest.raises(AdqlSyntaxError, match="not an ADQL function"):
        translate(adql, pg_hipparcos.catalogue(), dialect="postgres")


def test_the_query_role_reads_published_tables_only(
    pg_hipparcos: PostgresBackend, pg_database: PgDatabase
) -> None:
    with _owner(pg_database) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS private")
        conn.execute("CREATE TABLE IF NOT EXISTS private.secrets AS SELECT 42 AS answer")
    assert pg_hipparcos.run('SELECT COUNT(*) AS n FROM "hipparcos"."main"', 5).to_pylist() == [
        {"n": 117955}
    ]
    for sql, error in [
        ("SELECT * FROM private.secrets", "permission denied"),
        ('DELETE FROM "hipparcos"."main"', "read-only transaction"),
        ("CREATE TABLE public.x (a int)", "read-only transaction"),
        ("SELECT pg_read_file('/etc/passwd')", "permission denied"),
        ("SELECT * FROM pg_authid", "permission denied"),
    ]:
        with pytest.raises(QueryFailedError, match=error):
            pg_hipparcos.run(sql, 5)


def test_tap_schema_is_a_real_schema(pg_hipparcos: PostgresBackend) -> None:
    rows = pg_hipparcos.run(
        'SELECT "column_name", "unit", "ucd" FROM "TAP_SCHEMA"."columns" '
        "WHERE \"table_name\" = 'hipparcos.main' AND \"column_name\" IN ('ra', 'pmra') "
        'ORDER BY "column_index"',
        5,
    ).to_pylist()
    assert rows == [
        {"column_name": "ra", "unit": "deg", "ucd": "pos.eq.ra;meta.main"},
        {"column_name": "pmra", "unit": "mas/yr", "ucd": "pos.pm;pos.eq.ra"},
    ]
    info = pg_hipparcos.catalogue().table("hipparcos", "main")
    assert info is not None and info.spatial == SpatialIndex("ra", "dec")


def test_load_keeps_types_nulls_and_empty_strings_and_is_seen_by_other_services(
    pg_database: PgDatabase,
) -> None:
    reader = PostgresBackend(pg_database.dsn, pg_database.query_role, metadata_seconds=0)
    writer = PostgresBackend(pg_database.dsn, pg_database.query_role)
    columns = (ColumnInfo("id", "long"), ColumnInfo("flag", "boolean"),
               ColumnInfo("small", "short"), ColumnInfo("mag", "float"),
               ColumnInfo("name", "char", arraysize="*"), ColumnInfo("ra", "double"),
               ColumnInfo("dec", "double"), ColumnInfo("healpix", "long"))  # fmt: skip
    info = TableInfo("demo", "things", columns, spatial=SpatialIndex("ra", "dec"))
    data = pa.table({
        "id": [1, 2, 3], "flag": [True, None, False], "small": pa.array([1, -2, None], pa.int16()),
        "mag": pa.array([1.5, float("nan"), None], pa.float32()), "name": ["a,\"b", "", None],
        "ra": [10.0, 200.0, 359.9], "dec": [5.0, -60.0, 89.0],
    })  # fmt: skip
    assert writer.load_table(info, SchemaInfo("demo", "test rows"), data) == 3
    got = reader.run('SELECT * FROM "demo"."things" ORDER BY "id"', 5)
    assert got.schema.field("small").type == pa.int16()
    rows = got.to_pylist()
    assert [r["flag"] for r in rows] == [True, None, False]
    assert [r["name"] for r in rows] == ['a,"b', "", None]
    assert rows[0]["mag"] == 1.5 and rows[1]["mag"] != rows[1]["mag"] and rows[2]["mag"] is None
    assert reader.catalogue().table("demo", "things") is not None
    writer.load_table(info, SchemaInfo("demo"), data.slice(0, 1))  # replaced, not appended
    assert reader.run('SELECT COUNT(*) AS n FROM "demo"."things"', 5).to_pylist() == [{"n": 1}]
    reader.close()
    writer.close()


def test_catalog_load_through_the_config(pg_database: PgDatabase, tmp_path: Path) -> None:
    config = TapConfig(backend="postgres", dsn=pg_database.dsn, query_role=pg_database.query_role)
    services = build_tap(config, tmp_path, hub=fake_hub())
    try:
        assert isinstance(services.backend, PostgresBackend)
        line = catalog_load(services, "hipparcos", "stars.hip")
        assert line == (
            "loaded 117955 rows into stars.hip, sorted by HEALPix order 12 of (ra, dec), "
            "with a pgSphere index"
        )
        assert services.backend.catalogue().table("stars", "hip") is not None
    finally:
        services.backend.close()


def test_postgres_backend_needs_a_dsn(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dsn is empty"):
        build_tap(TapConfig(backend="postgres"), tmp_path, hub=fake_hub())


def test_unreachable_database_is_a_clear_query_error() -> None:
    backend = PostgresBackend("host=127.0.0.1 port=1 user=postgres dbname=none connect_timeout=2")
    with pytest.raises(QueryFailedError, match="catalogue database"):
        backend.run("SELECT 1", 5)
    backend.close()


async def test_sync_endpoint_on_postgres(pg_hipparcos: PostgresBackend, tmp_path: Path) -> None:
    """The whole service on the PostgreSQL backend: a cone as VOTable, and a refused query."""
    config = TapConfig(public_schemas=["TAP_SCHEMA", "hipparcos"], default_maxrec=1000)
    services = build_tap(config, tmp_path, hub=fake_hub(), backend=pg_hipparcos)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://tap.test") as client:
        r = await client.post("/api/tap/sync", data={"LANG": "ADQL", "QUERY": CONE_TOP5})
        table = parse(io.BytesIO(r.content)).get_first_table().to_table()
        assert list(table["hip"]) == [17702, 17847, 17499, 17573, 17608]  # Alcyone first
        assert str(table["ra"].unit) == "deg"
        r = await client.post(
            "/api/tap/sync", data={"LANG": "ADQL", "QUERY": "SELECT * FROM pg_catalog.pg_class"}
        )
        info = parse(io.BytesIO(r.content)).resources[0].infos[0]
        assert (info.value, "not available" in (info.content or "")) == ("ERROR", True)
