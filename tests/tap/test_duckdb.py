"""The DuckDB backend on the real Hipparcos catalogue: cones, TAP_SCHEMA, isolation, reloads."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from sciplat.tap.adql.translate import translate
from sciplat.tap.errors import QueryFailedError
from sciplat.tap.models.catalogue import ColumnInfo, SchemaInfo, SpatialIndex, TableInfo
from sciplat.tap.storage.duckdb import FAST_ARROW, DuckDBBackend


@pytest.fixture
def backend(hipparcos_dir: Path) -> DuckDBBackend:
    b = DuckDBBackend(hipparcos_dir)
    yield b  # type: ignore[misc]
    b.close()


def _brute_force(backend: DuckDBBackend, ra0: float, dec0: float, r: float) -> set[int]:
    rows = backend.run("SELECT hip, ra, dec FROM hipparcos.main", 30).to_pydict()
    ra, dec = np.radians(rows["ra"]), np.radians(rows["dec"])
    cos = np.sin(dec) * math.sin(math.radians(dec0)) + np.cos(dec) * math.cos(
        math.radians(dec0)
    ) * np.cos(ra - math.radians(ra0))
    inside = np.degrees(np.arccos(np.clip(cos, -1, 1))) <= r
    return set(np.asarray(rows["hip"])[inside].tolist())


@pytest.mark.parametrize(
    ("ra0", "dec0", "r"),
    [(56.75, 24.12, 1.0), (0.1, -0.2, 2.5), (266.4, -29.0, 0.3), (10, 89.5, 3)],
)
def test_cone_matches_brute_force(
    backend: DuckDBBackend, ra0: float, dec0: float, r: float
) -> None:
    query = (
        f"SELECT hip FROM hipparcos.main WHERE "  # noqa: S608 - ADQL under test
        f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0}, {dec0}, {r}))"
    )
    sql = translate(query, backend.catalogue()).sql
    found = set(backend.run(sql, 30).column("hip").to_pylist())
    assert found == _brute_force(backend, ra0, dec0, r)
    assert found  # every one of these cones holds stars


def test_cone_reads_only_a_few_row_groups(backend: DuckDBBackend) -> None:
    cone = "1 = CONTAINS(POINT(ra, dec), CIRCLE(56.75, 24.12, 1.0))"
    sql = translate(f"SELECT hip FROM hipparcos.main WHERE {cone}", backend.catalogue()).sql  # noqa: S608
    plan = backend.run(f"EXPLAIN ANALYZE {sql}", 30).column(1)[0].as_py()
    match = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan)
    assert match, plan
    scanned, total = int(match.group(1)), int(match.group(2))
    assert total >= 25  # 117,955 rows in groups of 4,096
    assert scanned <= 3


def test_tap_schema_describes_hipparcos(backend: DuckDBBackend) -> None:
    rows = backend.run(
        "SELECT column_name, unit, ucd FROM TAP_SCHEMA.columns "
        "WHERE table_name = 'hipparcos.main' ORDER BY column_index",
        30,
    ).to_pylist()
    by_name = {r["column_name"]: r for r in rows}
    assert by_name["ra"] == {"column_name": "ra", "unit": "deg", "ucd": "pos.eq.ra;meta.main"}
    assert by_name["pmra"]["unit"] == "mas/yr"
    tables = backend.run("SELECT table_name FROM TAP_SCHEMA.tables", 30).column(0).to_pylist()
    assert "hipparcos.main" in tables and "TAP_SCHEMA.columns" in tables
    assert backend.catalogue().table("hipparcos", "main").spatial == SpatialIndex("ra", "dec")  # type: ignore[union-attr]


def test_files_and_settings_are_out_of_reach(backend: DuckDBBackend) -> None:
    with pytest.raises(QueryFailedError, match="disabled"):
        backend.run("SELECT * FROM read_csv('/etc/passwd')", 5)
    with pytest.raises(QueryFailedError):
        backend.run("SET enable_external_access = true", 5)


def test_runaway_query_is_interrupted(backend: DuckDBBackend) -> None:
    with pytest.raises(QueryFailedError, match=r"longer than 0\.2 s"):
        backend.run("SELECT count(*) FROM range(100000000000)", 0.2)


def test_load_while_a_reader_is_open_swaps_generations(tmp_path: Path) -> None:
    reader = DuckDBBackend(tmp_path)
    writer = DuckDBBackend(tmp_path)
    info = TableInfo("demo", "t", (ColumnInfo("x", "long"), ColumnInfo("ra", "double"),
                                   ColumnInfo("dec", "double"), ColumnInfo("healpix", "long")),
                     spatial=SpatialIndex("ra", "dec"))  # fmt: skip
    data = pa.table({"x": [1, 2], "ra": [10.0, 200.0], "dec": [5.0, -60.0]})
    writer.load_table(info, SchemaInfo("demo"), data)
    assert reader.run("SELECT count(*) AS n FROM demo.t", 5).column(0)[0].as_py() == 2
    writer.load_table(info, SchemaInfo("demo"), pa.table({"x": [3], "ra": [1.0], "dec": [2.0]}))
    assert reader.run("SELECT x FROM demo.t", 5).column(0).to_pylist() == [3]
    assert len(list(tmp_path.glob("catalogue-*.duckdb"))) == 1
    reader.close()


def test_empty_directory_has_a_queryable_tap_schema(tmp_path: Path) -> None:
    backend = DuckDBBackend(tmp_path / "none")
    assert backend.run("SELECT count(*) FROM TAP_SCHEMA.tables", 5).column(0)[0].as_py() == 5
    backend.close()


def test_arrow_fast_path(backend: DuckDBBackend) -> None:
    """Queries run through DuckDB's one-statement Arrow path, with the relation API's types.

    The fast path is a private DuckDB module; if a duckdb upgrade drops it, the backend still
    works through ``cursor.sql`` but each cone costs ~1 ms more: this test says so.
    """
    assert FAST_ARROW, "duckdb._seam is gone: cones take the slow path"
    sql = ("SELECT hip, ra, CAST(hpmag AS DECIMAL(6, 3)) AS m, 'x' AS s, NULL AS n "
           "FROM hipparcos.main WHERE hip < 20 ORDER BY hip")  # fmt: skip
    fast = backend.run(sql, 5)
    con, _ = backend._connection()
    assert fast.equals(con.cursor().sql(sql).to_arrow_table())
    assert fast.num_rows == 19 and fast.schema.field("m").type == pa.decimal128(6, 3)
    assert backend.run("SELECT hip FROM hipparcos.main WHERE hip < 0", 5).num_rows == 0


def _stars(path: Path, rows: int) -> None:
    rng = np.random.default_rng(5)
    info = TableInfo("demo", "stars", (ColumnInfo("id", "long"), ColumnInfo("ra", "double"),
                                       ColumnInfo("dec", "double"), ColumnInfo("healpix", "long")),
                     spatial=SpatialIndex("ra", "dec"))  # fmt: skip
    data = pa.table({"id": np.arange(rows), "ra": rng.uniform(0, 360, rows),
                     "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, rows)))})  # fmt: skip
    writer = DuckDBBackend(path)
    writer.load_table(info, SchemaInfo("demo"), data)
    writer.close()


def _table_memory(backend: DuckDBBackend) -> int:
    used = backend.run("SELECT sum(memory_usage_bytes) AS m FROM duckdb_memory() "
                       "WHERE tag = 'BASE_TABLE'", 5).column(0)[0].as_py()  # fmt: skip
    return int(used or 0)


def test_a_catalogue_that_fits_is_read_into_memory_at_open(tmp_path: Path) -> None:
    """The first cone on a part of the sky must not pay for loading its blocks (see _warm)."""
    _stars(tmp_path, 500_000)
    size = (tmp_path / "current").resolve().stat().st_size
    backend = DuckDBBackend(tmp_path)
    backend.catalogue()
    assert backend.wait_warm()
    assert _table_memory(backend) > size // 2
    backend.close()


def test_a_catalogue_too_large_for_half_the_memory_limit_is_not_warmed(tmp_path: Path) -> None:
    _stars(tmp_path, 500_000)
    size = (tmp_path / "current").resolve().stat().st_size
    backend = DuckDBBackend(tmp_path, memory_limit=f"{size // 1000 + 1}KB")  # < twice the file
    backend.catalogue()
    assert backend.wait_warm()
    assert _table_memory(backend) < size // 4
    assert backend.run("SELECT count(*) FROM demo.stars", 5).column(0)[0].as_py() == 500_000
    backend.close()


def test_memory_sizes_are_read_as_duckdb_reads_them() -> None:
    from sciplat.configbase import parse_bytes  # what _warm reads memory_limit with

    assert parse_bytes("2GB") == 2_000_000_000
    assert parse_bytes("512 MiB") == 512 * 1024**2
    assert parse_bytes("1.5GiB") == int(1.5 * 1024**3)
    with pytest.raises(ValueError, match="is not a size"):
        parse_bytes("lots")  # then nothing is warmed
