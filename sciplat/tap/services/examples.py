"""The queries ``/examples`` offers: a few made for the catalogues loaded now, plus the
operator's own (``services.tap.examples``). Pure: catalogue and config in, examples out."""

from __future__ import annotations

import re

from sciplat.tap.config import TapExample
from sciplat.tap.models.catalogue import Catalogue, TableInfo

#: Where the generated cone searches look: the Pleiades, in every sky table's footprint of an
#: all-sky survey (a table elsewhere answers with no rows, which is still a valid example).
CONE = (56.75, 24.12, 1.0)
#: Sky tables given a cone search and a histogram each (a catalogue may hold hundreds).
MAX_TABLES = 5


def examples_for(catalogue: Catalogue, extra: tuple[TapExample, ...]) -> list[TapExample]:
    """What ``/examples`` lists: the generated ones, then the operator's."""
    return [*catalogue_examples(catalogue), *extra]


def catalogue_examples(catalogue: Catalogue) -> list[TapExample]:
    """A table listing, then a cone search and a declination histogram per sky table."""
    found = [
        TapExample(
            name="Tables of this service",
            query="SELECT schema_name, table_name, description FROM TAP_SCHEMA.tables "
            "ORDER BY schema_name, table_name",
            description="Every table you may query, with its description.",
        )
    ]
    sky = [t for t in catalogue.tables if t.spatial is not None and t.schema != "TAP_SCHEMA"]
    for table in sky[:MAX_TABLES]:
        found += [_cone(table), _histogram(table)]
    return found


def _cone(table: TableInfo) -> TapExample:
    assert table.spatial is not None  # noqa: S101 - only sky tables are passed in
    ra, dec, radius = CONE
    return TapExample(
        name=f"Cone search in {table.qualified}",
        query=(
            f"SELECT TOP 100 * FROM {table.qualified} WHERE 1 = CONTAINS("  # noqa: S608 - ADQL text for users, checked like any query when run
            f"POINT('ICRS', {table.spatial.ra}, {table.spatial.dec}), "
            f"CIRCLE('ICRS', {ra}, {dec}, {radius}))"
        ),
        description=f"Rows of {table.qualified} within {radius} degree of the Pleiades.",
    )


def _histogram(table: TableInfo) -> TapExample:
    assert table.spatial is not None  # noqa: S101 - only sky tables are passed in
    dec = table.spatial.dec
    return TapExample(
        name=f"Rows per 10 degrees of declination in {table.qualified}",
        # ADQL 2.0 groups by columns only, so the band is computed in a subquery
        query=(
            "SELECT dec_band, COUNT(*) AS n FROM ("  # noqa: S608 - as above
            f"SELECT FLOOR({dec} / 10) * 10 AS dec_band FROM {table.qualified}"
            ") AS bands GROUP BY dec_band ORDER BY dec_band"
        ),
        description="A whole-table aggregate: how the rows spread over the sky.",
    )


def example_ids(examples: list[TapExample]) -> list[str]:
    """A unique XML id per example, from its name (``cone-search-in-hipparcos-main``)."""
    ids: list[str] = []
    for example in examples:
        base = re.sub(r"[^a-z0-9]+", "-", example.name.lower()).strip("-") or "example"
        base = base if base[0].isalpha() else f"x-{base}"
        candidate, n = base, 2
        while candidate in ids:
            candidate, n = f"{base}-{n}", n + 1
        ids.append(candidate)
    return ids
