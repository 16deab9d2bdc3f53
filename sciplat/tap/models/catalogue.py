"""Catalogue metadata: what TAP_SCHEMA publishes and what ADQL translation resolves against."""

from __future__ import annotations

from dataclasses import dataclass, field

# VOTable datatypes (TAP 1.1 TAP_SCHEMA.columns.datatype) and the DuckDB types that hold them.
VOTABLE_TO_SQL = {
    "boolean": "BOOLEAN",
    "unsignedByte": "UTINYINT",
    "short": "SMALLINT",
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "REAL",
    "double": "DOUBLE",
    "char": "VARCHAR",
    "unicodeChar": "VARCHAR",
}


@dataclass(frozen=True)
class ColumnInfo:
    """One column as TAP_SCHEMA.columns describes it."""

    name: str
    datatype: str
    description: str = ""
    unit: str = ""
    ucd: str = ""
    utype: str = ""
    arraysize: str | None = None
    xtype: str | None = None
    indexed: bool = False
    principal: bool = False
    std: bool = False


@dataclass(frozen=True)
class SpatialIndex:
    """How a table's rows are sorted on the sky: a nested HEALPix column and its sources."""

    ra: str
    dec: str
    column: str = "healpix"
    order: int = 12


@dataclass(frozen=True)
class TableInfo:
    """One table (or view) published in TAP_SCHEMA.tables."""

    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    description: str = ""
    utype: str = ""
    table_type: str = "table"
    spatial: SpatialIndex | None = None

    @property
    def qualified(self) -> str:
        """``schema.name`` as ADQL writes it."""
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> ColumnInfo | None:
        """The column called ``name`` (ADQL regular identifiers are case-insensitive)."""
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)


@dataclass(frozen=True)
class ForeignKey:
    """TAP_SCHEMA.keys plus key_columns: ``from_table(from_columns)`` → ``target_table``."""

    key_id: str
    from_table: str
    target_table: str
    columns: tuple[tuple[str, str], ...]
    description: str = ""


@dataclass(frozen=True)
class SchemaInfo:
    """One schema of TAP_SCHEMA.schemas."""

    name: str
    description: str = ""
    utype: str = ""


@dataclass(frozen=True)
class Catalogue:
    """Everything queryable: the only tables ADQL can reach."""

    schemas: tuple[SchemaInfo, ...] = ()
    tables: tuple[TableInfo, ...] = ()
    keys: tuple[ForeignKey, ...] = ()
    _index: dict[str, TableInfo] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for table in self.tables:
            self._index[table.qualified.lower()] = table

    def table(self, schema: str | None, name: str) -> TableInfo | None:
        """Find a table; without a schema, only a name that is unique outside TAP_SCHEMA."""
        if schema:
            return self._index.get(f"{schema}.{name}".lower())
        found = [
            t
            for t in self.tables
            if t.name.lower() == name.lower() and t.schema.lower() != "tap_schema"
        ]
        return found[0] if len(found) == 1 else None

    def names(self) -> list[str]:
        """Every ``schema.table``, for "did you mean" messages."""
        return [t.qualified for t in self.tables]
