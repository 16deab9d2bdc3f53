"""The same ADQL on both catalogue backends (DuckDB and PostgreSQL + pgSphere) on Hipparcos.

Every query runs on each backend against the same rows; the answers must agree with a brute
force computation in numpy, or with each other.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from sciplat.tap.adql.translate import translate
from sciplat.tap.errors import QueryFailedError
from sciplat.tap.storage.backend import CatalogueBackend, QueryCancel
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.storage.postgres import PostgresBackend


def _run(backend: CatalogueBackend, adql: str, **uploads: pa.Table) -> pa.Table:
    sql = translate(adql, backend.catalogue(), dialect=backend.dialect).sql
    return backend.run(sql, 30, uploads=uploads or None)


def _sky(backend: CatalogueBackend) -> dict[str, np.ndarray]:
    rows = _run(backend, "SELECT hip, ra, dec FROM hipparcos.main").to_pydict()
    return {k: np.asarray(v) for k, v in rows.items()}


def _separation(sky: dict[str, np.ndarray], ra0: float, dec0: float) -> np.ndarray:
    ra, dec = np.radians(sky["ra"]), np.radians(sky["dec"])
    d0 = math.radians(dec0)
    cos = np.sin(dec) * math.sin(d0) + np.cos(dec) * math.cos(d0) * np.cos(ra - math.radians(ra0))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.parametrize(
    ("ra0", "dec0", "r"),
    [(56.75, 24.12, 1.0), (0.1, -0.2, 2.5), (266.4, -29.0, 0.3), (10, 89.5, 3)],
)
def test_cone_matches_brute_force(
    any_backend: CatalogueBackend, ra0: float, dec0: float, r: float
) -> None:
    found = _run(
        any_backend,
        f"SELECT hip FROM hipparcos.main WHERE "  # noqa: S608 - ADQL under test
        f"1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra0}, {dec0}, {r}))",
    )
    sky = _sky(any_backend)
    # stars within 1e-9 degrees of the edge may fall either way in floating point
    sep = _separation(sky, ra0, dec0)
    inside, edge = set(sky["hip"][sep < r - 1e-9]), set(sky["hip"][abs(sep - r) <= 1e-9])
    got = set(found.column("hip").to_pylist())
    assert inside <= got <= inside | edge
    assert inside


def test_distance_and_coordinates(any_backend: CatalogueBackend) -> None:
    rows = _run(
        any_backend,
        "SELECT TOP 5 hip, DISTANCE(POINT(ra, dec), POINT(56.75, 24.12)) AS d, "
        "COORD1(POINT(ra, dec)) AS x, COORD2(POINT(ra, dec)) AS y FROM hipparcos.main "
        "WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(56.75, 24.12, 0.5)) ORDER BY d",
    ).to_pylist()
    sky = _sky(any_backend)
    nearest = sky["hip"][np.argsort(_separation(sky, 56.75, 24.12))[:5]]
    assert [r["hip"] for r in rows] == nearest.tolist()
    for r in rows:
        expected = _separation({"ra": np.array([r["x"]]), "dec": np.array([r["y"]])}, 56.75, 24.12)
        assert r["d"] == pytest.approx(float(expected[0]), abs=1e-9)


def test_polygon_and_box_agree_with_each_other(any_backend: CatalogueBackend) -> None:
    polygon = _run(
        any_backend,
        "SELECT hip FROM hipparcos.main WHERE "
        "1 = CONTAINS(POINT(ra, dec), POLYGON(55.75, 23.12, 57.75, 23.12, 57.75, 25.12, "
        "55.75, 25.12))",
    )
    box = _run(
        any_backend,
        "SELECT hip FROM hipparcos.main WHERE "
        "CONTAINS(POINT(ra, dec), BOX('ICRS', 56.75, 24.12, 2, 2)) = 1",
    )
    assert sorted(polygon.column(0).to_pylist()) == sorted(box.column(0).to_pylist())
    sky = _sky(any_backend)
    ra, dec = sky["ra"], sky["dec"]

    def within(margin: float) -> set[int]:  # great-circle edges stray < 0.01° from the lines
        ok = (abs(ra - 56.75) < 1 + margin) & (abs(dec - 24.12) < 1 + margin)
        return set(sky["hip"][ok].tolist())

    found = set(polygon.column(0).to_pylist())
    assert within(-0.01) <= found <= within(0.01)
    assert len(found) > 20  # the Pleiades


def test_area_in_square_degrees(any_backend: CatalogueBackend) -> None:
    row = _run(
        any_backend,
        "SELECT AREA(CIRCLE(10, 20, 1)) AS c, AREA(POLYGON(0, 0, 1, 0, 1, 1, 0, 1)) AS p, "
        "AREA(BOX(0.5, 0.5, 1, 1)) AS b FROM TAP_SCHEMA.schemas",
    ).to_pylist()[0]
    assert row["c"] == pytest.approx(math.degrees(math.degrees(2 * math.pi * (1 - math.cos(
        math.radians(1))))), rel=1e-9)  # fmt: skip
    assert row["p"] == pytest.approx(_girard([(0, 0), (1, 0), (1, 1), (0, 1)]), rel=1e-9)
    assert row["b"] == pytest.approx(row["p"], rel=1e-9)


def _girard(corners: list[tuple[float, float]]) -> float:
    """Area of a spherical polygon in square degrees: sum of its angles - (n - 2)π."""
    vecs = [np.array([math.cos(math.radians(d)) * math.cos(math.radians(r)),
                      math.cos(math.radians(d)) * math.sin(math.radians(r)),
                      math.sin(math.radians(d))]) for r, d in corners]  # fmt: skip
    total = 0.0
    for i, b in enumerate(vecs):
        a, c = vecs[i - 1], vecs[(i + 1) % len(vecs)]
        ta, tc = np.cross(np.cross(b, a), b), np.cross(np.cross(b, c), b)  # tangents at b
        total += math.acos(float(np.dot(ta, tc) / np.linalg.norm(ta) / np.linalg.norm(tc)))
    return math.degrees(math.degrees(total - (len(vecs) - 2) * math.pi))


def test_intersecting_circles(any_backend: CatalogueBackend) -> None:
    rows = _run(
        any_backend,
        "SELECT hip FROM hipparcos.main WHERE "
        "1 = INTERSECTS(CIRCLE(ra, dec, 0.1), CIRCLE(56.75, 24.12, 0.4)) ORDER BY hip",
    ).column(0)
    sky = _sky(any_backend)
    expected = sorted(sky["hip"][_separation(sky, 56.75, 24.12) <= 0.5].tolist())
    assert rows.to_pylist() == expected


@pytest.mark.parametrize(
    "adql",
    [
        "SELECT FLOOR(dec) AS band, COUNT(*) AS n, AVG(hpmag) AS mag FROM hipparcos.main "
        "GROUP BY FLOOR(dec) ORDER BY band",
        "SELECT TOP 3 hip, ROUND(hpmag, 1) AS r, TRUNCATE(plx, 0) AS t, MOD(hip, 7) AS m, "
        "LOG(plx) AS ln, LOG10(plx) AS lg FROM hipparcos.main WHERE plx > 100 ORDER BY hip",
        "SELECT COUNT(*) AS n FROM hipparcos.main AS a JOIN hipparcos.main AS b "
        "ON a.hip = b.hip WHERE 1 = CONTAINS(POINT(a.ra, a.dec), CIRCLE(56.75, 24.12, 2))",
        "SELECT table_name, column_name, unit, ucd FROM TAP_SCHEMA.columns "
        "WHERE table_name = 'hipparcos.main' ORDER BY column_index",
        "SELECT TOP 2 hip FROM hipparcos.main WHERE hip IN "
        "(SELECT hip FROM hipparcos.main WHERE hpmag < 2) ORDER BY hip DESC",
    ],
)
def test_same_answer_on_both_backends(
    adql: str, hipparcos_dir: Any, pg_hipparcos: PostgresBackend
) -> None:
    duck = DuckDBBackend(hipparcos_dir)
    try:
        expected = _run(duck, adql).to_pylist()
    finally:
        duck.close()
    got = _run(pg_hipparcos, adql).to_pylist()
    assert len(got) == len(expected) > 0
    for mine, theirs in zip(got, expected, strict=True):
        assert list(mine) == list(theirs)
        for key, value in theirs.items():
            if isinstance(value, float):
                assert mine[key] == pytest.approx(value, rel=1e-12), key
            else:
                assert mine[key] == value, key


def test_uploads_are_seen_by_their_query_only(any_backend: CatalogueBackend) -> None:
    targets = pa.table({"name": ["alcyone", "nowhere", ""], "ra": [56.87, 0.0, 10.0],
                        "dec": [24.105, -89.99, None]})  # fmt: skip
    schema_parts = ".".join(f'"{p}"' for p in any_backend.upload_schema.split("."))
    sql = (
        f'SELECT t."name", COUNT(m."hip") AS n FROM {schema_parts}."targets" AS t '  # noqa: S608
        'LEFT JOIN "hipparcos"."main" AS m ON ABS(m."dec" - t."dec") < 0.01 '
        'AND ABS(m."ra" - t."ra") < 0.01 GROUP BY t."name" ORDER BY t."name"'
    )
    rows = any_backend.run(sql, 30, uploads={"targets": targets}).to_pylist()
    assert rows == [{"name": "", "n": 0}, {"name": "alcyone", "n": 1}, {"name": "nowhere", "n": 0}]
    with pytest.raises(QueryFailedError):
        any_backend.run(f'SELECT * FROM {schema_parts}."targets"', 30)  # noqa: S608


def test_a_set_cancel_stops_before_running(any_backend: CatalogueBackend) -> None:
    cancel = QueryCancel()
    cancel.set()
    with pytest.raises(QueryFailedError, match="aborted"):
        any_backend.run('SELECT COUNT(*) FROM "hipparcos"."main"', 30, cancel=cancel)
