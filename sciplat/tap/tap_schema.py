"""TAP_SCHEMA (TAP 1.1 §4) built from catalogue metadata, and read back: pure functions.

TAP_SCHEMA describes itself too, so ``SELECT * FROM TAP_SCHEMA.columns`` lists its own columns.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sciplat.tap.models.catalogue import (
    Catalogue,
    ColumnInfo,
    ForeignKey,
    SchemaInfo,
    SpatialIndex,
    TableInfo,
)

SCHEMA = "TAP_SCHEMA"

# ADQL 2.0 §2.1.2 reserved words (SQL-92's plus ADQL's own; ADQL 2.1 keeps them). A column
# named like one must be published delimited (TAP 1.1 §4.3: TAP_SCHEMA.columns."size"), so a
# client that copies names from TAP_SCHEMA writes valid ADQL. Written out here because no
# installed ADQL library exports the list (sqlglot's keyword sets are per SQL dialect).
_RESERVED_WORDS = """
ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY ARE AS ASC ASSERTION AT AUTHORIZATION AVG BEGIN
BETWEEN BIT BIT_LENGTH BOTH BY CASCADE CASCADED CASE CAST CATALOG CHAR CHARACTER CHAR_LENGTH
CHARACTER_LENGTH CHECK CLOSE COALESCE COLLATE COLLATION COLUMN COMMIT CONNECT CONNECTION
CONSTRAINT CONSTRAINTS CONTINUE CONVERT CORRESPONDING COUNT CREATE CROSS CURRENT CURRENT_DATE
CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER CURSOR DATE DAY DEALLOCATE DECIMAL DECLARE DEFAULT
DEFERRABLE DEFERRED DELETE DESC DESCRIBE DESCRIPTOR DIAGNOSTICS DISCONNECT DISTINCT DOMAIN DOUBLE
DROP ELSE END END-EXEC ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH
FIRST FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY
IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTEGER INTERSECT INTERVAL
INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH MAX MIN MINUTE
MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC OCTET_LENGTH OF ON ONLY
OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL POSITION PRECISION PREPARE PRESERVE
PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES RELATIVE RESTRICT REVOKE RIGHT
ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION SESSION_USER SET SIZE SMALLINT SOME
SPACE SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP
TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE
UNKNOWN UPDATE UPPER USAGE USER USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE WITH
WORK WRITE YEAR ZONE
ABS ACOS AREA ASIN ATAN ATAN2 BIGINT BOX CEILING CENTROID CIRCLE CONTAINS COORD1 COORD2 COORDSYS
COS COT DEGREES DISTANCE EXP FLOOR INTERSECTS LOG LOG10 MOD PI POINT POLYGON POWER RADIANS REGION
RAND ROUND SIN SQRT TAN TOP TRUNCATE
"""
ADQL_RESERVED: frozenset[str] = frozenset(_RESERVED_WORDS.split())


def published_name(name: str) -> str:
    """A column name as TAP_SCHEMA and /tables publish it: delimited if ADQL reserves it."""
    return f'"{name}"' if name.upper() in ADQL_RESERVED else name


def stored_name(name: str) -> str:
    """The column name behind a published one (the inverse of :func:`published_name`)."""
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] == '"' else name


def _null(text: str | None) -> str | None:
    """TAP_SCHEMA holds NULL, not "", for an absent utype/unit/ucd/description (taplint compares
    them with result documents, where an absent attribute is null)."""
    return text or None


def _c(name: str, datatype: str, description: str, arraysize: str | None = None) -> ColumnInfo:
    return ColumnInfo(name, datatype, description, arraysize=arraysize, std=True, principal=True)


_TEXT = "*"
TAP_SCHEMA_TABLES: tuple[TableInfo, ...] = (
    TableInfo(SCHEMA, "schemas", (
        _c("schema_name", "char", "schema name for reference to TAP_SCHEMA.schemas", _TEXT),
        _c("utype", "char", "lists the utypes of schemas in the tableset", _TEXT),
        _c("description", "char", "describes schemas in the tableset", _TEXT),
        _c("schema_index", "int", "recommended sort order when listing schemas"),
    ), "description of schemas in this tableset"),
    TableInfo(SCHEMA, "tables", (
        _c("schema_name", "char", "the schema this table belongs to", _TEXT),
        _c("table_name", "char", "the fully qualified table name", _TEXT),
        _c("table_type", "char", "one of: table view", _TEXT),
        _c("utype", "char", "lists the utype of tables in the tableset", _TEXT),
        _c("description", "char", "describes tables in the tableset", _TEXT),
        _c("table_index", "int", "recommended sort order when listing tables"),
    ), "description of tables in this tableset"),
    TableInfo(SCHEMA, "columns", (
        _c("table_name", "char", "the table this column belongs to", _TEXT),
        _c("column_name", "char", "the column name", _TEXT),
        _c("datatype", "char", "lists the VOTable datatype of columns in the tableset", _TEXT),
        _c("arraysize", "char", "lists the size of variable-length columns", _TEXT),
        _c("xtype", "char", "a DALI or custom extended type annotation", _TEXT),
        _c("size", "int", "deprecated: use arraysize"),
        _c("description", "char", "describes the columns in the tableset", _TEXT),
        _c("utype", "char", "lists the utypes of columns in the tableset", _TEXT),
        _c("unit", "char", "lists the unit used for column values in the tableset", _TEXT),
        _c("ucd", "char", "lists the UCDs of columns in the tableset", _TEXT),
        _c("indexed", "int", "an indexed column; 1 means true, 0 means false"),
        _c("principal", "int", "a principal column; 1 means true, 0 means false"),
        _c("std", "int", "a standard column; 1 means true, 0 means false"),
        _c("column_index", "int", "recommended sort order when listing columns"),
    ), "description of columns in this tableset"),
    TableInfo(SCHEMA, "keys", (
        _c("key_id", "char", "unique key to join to TAP_SCHEMA.key_columns", _TEXT),
        _c("from_table", "char", "the table with the foreign key", _TEXT),
        _c("target_table", "char", "the table with the primary key", _TEXT),
        _c("utype", "char", "lists the utype of keys in the tableset", _TEXT),
        _c("description", "char", "describes keys in the tableset", _TEXT),
    ), "description of foreign keys in this tableset"),
    TableInfo(SCHEMA, "key_columns", (
        _c("key_id", "char", "key to join to TAP_SCHEMA.keys", _TEXT),
        _c("from_column", "char", "column in the from_table", _TEXT),
        _c("target_column", "char", "column in the target_table", _TEXT),
    ), "description of foreign key columns in this tableset"),
)  # fmt: skip


# TAP_SCHEMA's own foreign keys (TAP 1.1 §4: each table names its parent by these columns)
TAP_SCHEMA_KEYS: tuple[ForeignKey, ...] = (
    ForeignKey("TAP_SCHEMA.tables_schema", f"{SCHEMA}.tables", f"{SCHEMA}.schemas",
               (("schema_name", "schema_name"),), "the schema of a table"),
    ForeignKey("TAP_SCHEMA.columns_table", f"{SCHEMA}.columns", f"{SCHEMA}.tables",
               (("table_name", "table_name"),), "the table of a column"),
    ForeignKey("TAP_SCHEMA.keys_from", f"{SCHEMA}.keys", f"{SCHEMA}.tables",
               (("from_table", "table_name"),), "the table holding a foreign key"),
    ForeignKey("TAP_SCHEMA.keys_target", f"{SCHEMA}.keys", f"{SCHEMA}.tables",
               (("target_table", "table_name"),), "the table a foreign key points at"),
    ForeignKey("TAP_SCHEMA.key_columns_key", f"{SCHEMA}.key_columns", f"{SCHEMA}.keys",
               (("key_id", "key_id"),), "the key a column pair belongs to"),
)  # fmt: skip


def _is_tap_schema(qualified: str) -> bool:
    return qualified.split(".", 1)[0].lower() == SCHEMA.lower()


def with_tap_schema(catalogue: Catalogue) -> Catalogue:
    """The catalogue plus TAP_SCHEMA's own schema, tables and foreign keys."""
    schemas = [s for s in catalogue.schemas if s.name != SCHEMA]
    tables = [t for t in catalogue.tables if t.schema != SCHEMA]
    keys = [k for k in catalogue.keys if not _is_tap_schema(k.from_table)]
    return Catalogue(
        schemas=(SchemaInfo(SCHEMA, "metadata of this TAP service (TAP 1.1)"), *schemas),
        tables=(*TAP_SCHEMA_TABLES, *tables),
        keys=(*TAP_SCHEMA_KEYS, *keys),
    )


def build_rows(catalogue: Catalogue) -> dict[str, pa.Table]:
    """The five TAP_SCHEMA tables (as Arrow tables) describing ``catalogue`` and themselves."""
    full = with_tap_schema(catalogue)
    columns: dict[str, list[Any]] = {c.name: [] for c in TAP_SCHEMA_TABLES[2].columns}
    for table in full.tables:
        for i, col in enumerate(table.columns):
            row = {
                "table_name": table.qualified, "column_name": published_name(col.name),
                "datatype": col.datatype, "arraysize": col.arraysize, "xtype": col.xtype,
                "size": None, "description": _null(col.description), "utype": _null(col.utype),
                "unit": _null(col.unit), "ucd": _null(col.ucd), "indexed": int(col.indexed),
                "principal": int(col.principal), "std": int(col.std), "column_index": i,
            }  # fmt: skip
            for key, value in row.items():
                columns[key].append(value)
    return {
        "schemas": _table(TAP_SCHEMA_TABLES[0], [
            [s.name for s in full.schemas], [_null(s.utype) for s in full.schemas],
            [_null(s.description) for s in full.schemas], list(range(len(full.schemas))),
        ]),
        "tables": _table(TAP_SCHEMA_TABLES[1], [
            [t.schema for t in full.tables], [t.qualified for t in full.tables],
            [t.table_type for t in full.tables], [_null(t.utype) for t in full.tables],
            [_null(t.description) for t in full.tables], list(range(len(full.tables))),
        ]),
        "columns": _table(TAP_SCHEMA_TABLES[2], list(columns.values())),
        "keys": _table(TAP_SCHEMA_TABLES[3], [
            [k.key_id for k in full.keys], [k.from_table for k in full.keys],
            [k.target_table for k in full.keys], [None for _ in full.keys],
            [_null(k.description) for k in full.keys],
        ]),
        "key_columns": _table(TAP_SCHEMA_TABLES[4], [
            [k.key_id for k in full.keys for _ in k.columns],
            [f for k in full.keys for f, _ in k.columns],
            [t for k in full.keys for _, t in k.columns],
        ]),
    }  # fmt: skip


def _table(info: TableInfo, values: list[list[Any]]) -> pa.Table:
    types = {"char": pa.string(), "int": pa.int32()}
    return pa.table(
        {
            c.name: pa.array(v, type=types[c.datatype])
            for c, v in zip(info.columns, values, strict=True)
        }
    )


def read_catalogue(
    rows: dict[str, list[dict[str, Any]]], spatial: dict[str, SpatialIndex]
) -> Catalogue:
    """The catalogue (without TAP_SCHEMA itself) described by TAP_SCHEMA rows as dicts."""
    cols: dict[str, list[ColumnInfo]] = {}
    for r in sorted(rows["columns"], key=lambda r: (r["table_name"], r["column_index"] or 0)):
        cols.setdefault(r["table_name"], []).append(
            ColumnInfo(
                name=stored_name(r["column_name"]), datatype=r["datatype"],
                description=r["description"] or "",
                unit=r["unit"] or "", ucd=r["ucd"] or "", utype=r["utype"] or "",
                arraysize=r["arraysize"], xtype=r["xtype"], indexed=bool(r["indexed"]),
                principal=bool(r["principal"]), std=bool(r["std"]),
            )
        )  # fmt: skip
    tables = tuple(
        TableInfo(
            schema=r["schema_name"], name=r["table_name"].split(".", 1)[-1],
            columns=tuple(cols.get(r["table_name"], ())), description=r["description"] or "",
            utype=r["utype"] or "", table_type=r["table_type"],
            spatial=spatial.get(r["table_name"].lower()),
        )
        for r in sorted(rows["tables"], key=lambda r: r["table_index"] or 0)
        if r["schema_name"] != SCHEMA
    )  # fmt: skip
    schemas = tuple(
        SchemaInfo(r["schema_name"], r["description"] or "", r["utype"] or "")
        for r in sorted(rows["schemas"], key=lambda r: r["schema_index"] or 0)
        if r["schema_name"] != SCHEMA
    )
    pairs: dict[str, list[tuple[str, str]]] = {}
    for r in rows["key_columns"]:
        pairs.setdefault(r["key_id"], []).append((r["from_column"], r["target_column"]))
    keys = tuple(
        ForeignKey(r["key_id"], r["from_table"], r["target_table"],
                   tuple(pairs.get(r["key_id"], ())), r["description"] or "")
        for r in rows["keys"]
        if not _is_tap_schema(r["from_table"])
    )  # fmt: skip
    return Catalogue(schemas=schemas, tables=tables, keys=keys)
