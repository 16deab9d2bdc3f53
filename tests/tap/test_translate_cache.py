"""Translations reused by query shape: the SQL must be exactly what a fresh translation gives."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from sciplat.tap.adql import cache
from sciplat.tap.adql.translate import CACHE, translate
from sciplat.tap.errors import AdqlUnsupportedError, TapError, UnknownTableError
from sciplat.tap.models.catalogue import Catalogue, SpatialIndex, TableInfo
from sciplat.tap.tap_schema import with_tap_schema

SHAPES = [
    "SELECT hip, ra, dec FROM hipparcos.main WHERE "
    "1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {a}, {b}, {r}))",
    "SELECT TOP {n} hip FROM hipparcos.main WHERE "
    "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {a}, -{b}, {r})) = {bit}",
    "SELECT hip, DISTANCE(POINT(ra, dec), POINT({a}, {b})) AS d FROM hipparcos.main "
    "WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE({a}, {b}, {r})) AND hpmag < {r} -- {n}\n",
    "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT(ra, dec), BOX({a}, {c}, {r}, {r}))",
    "SELECT hip FROM hipparcos.main WHERE "
    "1 = CONTAINS(POINT(ra, dec), POLYGON({a}, {c}, {a2}, {c}, {a2}, {c2}))",
    "SELECT hip FROM hipparcos.main AS s WHERE 1 = INTERSECTS(CIRCLE(s.ra, s.dec, {r}), "
    "POINT({a}, {b}))",
    "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE({a}, {b}, {big}))",
    "SELECT TOP {n} hip, hpmag * {r} AS x FROM hipparcos.main WHERE hpmag BETWEEN {r} AND {big} "
    "AND ra > 1e{n} ORDER BY hpmag",
    "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE({a}, {b}, {r}e-1))",
    "SELECT AREA(CIRCLE({a}, {b}, {r})) AS a, LOG10(hpmag) AS l FROM hipparcos.main "
    "WHERE hip = {n}",
    "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT(ra, dec), "
    "CIRCLE('{frame}', {a}, {b}, {r}))",
]


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    CACHE.clear()
    yield
    CACHE.clear()


def _values(rng: random.Random) -> dict[str, object]:
    a = round(rng.uniform(0, 357), rng.randint(0, 6))
    c = round(rng.uniform(-60, 60), 1)
    return {
        "a": a, "b": round(rng.uniform(0, 89), 3), "r": round(rng.uniform(0.01, 3), 2),
        "n": rng.choice([1, 5, 10, 2000]), "c": c, "a2": round(a + 2, 2), "c2": round(c + 2, 1),
        "big": rng.choice([1, 90, 120, 179.5, 200]), "bit": rng.choice([0, 1, 2]),
        "frame": rng.choice(["ICRS", "GALACTIC", "ICRS GEOCENTER"]),
    }  # fmt: skip


def _outcome(query: str, catalogue: Catalogue, **kwargs: object) -> object:
    try:
        return translate(query, catalogue, **kwargs)  # type: ignore[arg-type]
    except TapError as exc:
        return repr(exc)


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("maxrec", [None, 1000, 5])
def test_cached_translation_is_the_fresh_one(
    catalogue: Catalogue, dialect: str, maxrec: int | None
) -> None:
    """Every shape with random numbers, translated with whatever the cache holds from earlier
    ones, gives exactly (SQL, limit, columns; or the error) what a fresh translation gives."""
    rng = random.Random(f"{dialect}{maxrec}")  # noqa: S311 - test data
    hits = CACHE.hits
    for _ in range(25):
        for shape in SHAPES:
            query = shape.format(**_values(rng))
            kept = _outcome(query, catalogue, maxrec=maxrec, dialect=dialect)
            saved = dict(CACHE._shapes)
            CACHE.clear()
            assert kept == _outcome(query, catalogue, maxrec=maxrec, dialect=dialect), query
            CACHE._shapes.update(saved)
    # DuckDB cones (and more) came from the cache; pgSphere cones pin their numbers (radians)
    assert CACHE.hits - hits > (50 if dialect == "duckdb" else 10)


def test_cones_anywhere_share_one_translation(catalogue: Catalogue) -> None:
    query = SHAPES[0]
    first = translate(query.format(a=56.75, b=24.12, r=1.0), catalogue)
    hits = CACHE.hits
    second = translate(query.format(a=310.5, b=89.99, r=0.25), catalogue)  # another cone
    assert CACHE.hits == hits + 1
    assert second.sql != first.sql
    assert "310.5" in second.sql and "89.99" in second.sql
    CACHE.clear()
    assert translate(query.format(a=310.5, b=89.99, r=0.25), catalogue) == second


def test_numbers_the_translation_decides_on_are_not_shared(catalogue: Catalogue) -> None:
    """TOP n, `= 0` (outside) and BOX sizes change the SQL's structure: never reused."""
    top = "SELECT TOP {n} hip FROM hipparcos.main WHERE hpmag < 3.5"
    assert translate(top.format(n=10), catalogue, maxrec=100).limit == 10
    assert translate(top.format(n=1000), catalogue, maxrec=100).limit == 101
    cone = "SELECT hip FROM hipparcos.main WHERE {bit} = CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3))"
    inside, outside = (translate(cone.format(bit=b), catalogue).sql for b in (1, 0))
    assert "NOT" in outside and "NOT" not in inside
    box = "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT(ra, dec), BOX(10, 10, 1, {h}))"
    translate(box.format(h=1), catalogue)
    with pytest.raises(AdqlUnsupportedError, match="BOX must be smaller"):
        translate(box.format(h=200), catalogue)


def test_the_caller_and_the_catalogue_still_count(catalogue: Catalogue) -> None:
    query = "SELECT id FROM survey.sources WHERE id = {n}"
    translate(query.format(n=1), catalogue)
    with pytest.raises(UnknownTableError, match="not available"):
        translate(query.format(n=2), catalogue, may_read=lambda t: t.schema != "survey")
    # the same shape on another catalogue (here: HEALPix of another order) is translated anew
    cone = SHAPES[0].format(a=56.75, b=24.12, r=1.0)
    tables = tuple(
        TableInfo(t.schema, t.name, t.columns, spatial=SpatialIndex("ra", "dec", order=8))
        if t.qualified == "hipparcos.main"
        else t
        for t in catalogue.tables
        if t.schema != "TAP_SCHEMA"
    )
    other = with_tap_schema(Catalogue(schemas=catalogue.schemas[:2], tables=tables))
    assert translate(cone, other).sql != translate(cone, catalogue).sql
    assert translate(cone, other).sql == (CACHE.clear(), translate(cone, other))[1].sql


def test_only_number_tokens_are_lifted() -> None:
    """Numbers inside names, strings and quoted names stay part of the shape."""
    query = cache.lift("SELECT x2, 'a1' AS \"c3\" FROM t4 WHERE y = 5 AND z > 1.5e-3 -- 7\n")
    assert query is not None
    assert query.numbers == ("5", "1.5e-3")
    assert "x2" in query.shape and "'a1'" in query.shape and "t4" in query.shape
    assert "-- 7" in query.shape
    assert cache.lift("SELECT 1 FROM t WHERE a = '\x00'") is None  # our hole marker
    assert cache.lift("SELECT 'unterminated") is None  # the translation reports it


def test_a_cached_cone_translates_in_a_fifth_of_a_millisecond(catalogue: Catalogue) -> None:
    rng = random.Random(1)  # noqa: S311 - test data
    translate(SHAPES[0].format(a=1, b=2, r=1.0), catalogue)
    queries = [SHAPES[0].format(a=rng.uniform(0, 360), b=rng.uniform(-89, 89), r=1.0)
               for _ in range(30)]  # fmt: skip
    best = min(_timed(q, catalogue) for q in queries)
    assert best < 0.002, f"{best * 1000:.2f} ms"  # ~0.18 ms idle (fresh: ~0.8 ms)


def _timed(query: str, catalogue: Catalogue) -> float:
    start = time.perf_counter()
    translate(query, catalogue)
    return time.perf_counter() - start
