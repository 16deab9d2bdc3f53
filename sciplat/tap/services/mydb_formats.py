"""MyDB's table formats: a VOTable, CSV or Parquet body (or an async job's result) → an Arrow
table with the column types ADQL queries can use and the TAP_SCHEMA description of its columns.
Pure functions; policy is in services/mydb.py."""

from __future__ import annotations

import io
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sciplat.tap.errors import TapParameterError
from sciplat.tap.models.catalogue import ColumnInfo
from sciplat.tap.services.upload import read_votable

#: a column (or schema, or table) name: an ADQL regular identifier of at most 63 characters
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_VOTABLE = ("application/x-votable+xml", "text/xml", "application/xml")
_CSV = ("text/csv", "application/csv")
_PARQUET = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
# Arrow types queries can use (VOTable datatype), and casts for those they cannot
_DATATYPES = {
    pa.bool_(): "boolean", pa.uint8(): "unsignedByte", pa.int16(): "short", pa.int32(): "int",
    pa.int64(): "long", pa.float32(): "float", pa.float64(): "double", pa.string(): "char",
}  # fmt: skip
_CASTS = {
    pa.int8(): pa.int16(), pa.uint16(): pa.int32(), pa.uint32(): pa.int64(),
    pa.uint64(): pa.int64(), pa.float16(): pa.float32(), pa.large_string(): pa.string(),
    pa.null(): pa.string(),
}  # fmt: skip


def read_body(data: bytes, content_type: str) -> pa.Table:
    """A table from a VOTable, CSV or Parquet document (chosen by ``content_type``), with
    types queries can use and units/UCDs/descriptions as field metadata.

    Raises:
        TapParameterError: an unknown content type, an unreadable document, no columns,
            column names that are not ADQL identifiers or repeat, or unusable column types.
    """
    mime = content_type.split(";", maxsplit=1)[0].strip().lower()
    try:
        if mime in _VOTABLE:
            table = read_votable("table", data)
        elif mime in _CSV:
            table = pacsv.read_csv(io.BytesIO(data))
        elif mime in _PARQUET:
            table = pq.read_table(pa.BufferReader(data))
        else:
            raise TapParameterError(
                f"Content-Type {mime or '(none)'} cannot be stored: send a VOTable "
                "(application/x-votable+xml), CSV with a header line (text/csv) or Parquet "
                "(application/vnd.apache.parquet)"
            )
    except (pa.ArrowException, OSError) as exc:
        raise TapParameterError(f"the {mime} body cannot be read: {str(exc)[:200]}") from exc
    return normalize(table)


def normalize(table: pa.Table) -> pa.Table:
    """``table`` with column types queries can use (see the module's casts).

    Raises:
        TapParameterError: no columns, bad or repeated names, types that cannot be stored.
    """
    if table.num_columns == 0:
        raise TapParameterError("the table has no columns")
    seen: set[str] = set()
    fields, arrays = [], []
    for fld, original in zip(table.schema, table.columns, strict=True):
        column = original
        if not NAME.match(fld.name):
            raise TapParameterError(
                f"column name {fld.name[:80]!r} cannot be used in ADQL: name columns with a "
                "letter then up to 62 letters, digits or underscores"
            )
        if fld.name.lower() in seen:
            raise TapParameterError(f"two columns are called '{fld.name}' (names ignore case)")
        seen.add(fld.name.lower())
        kind = fld.type
        if pa.types.is_dictionary(kind):
            column, kind = column.cast(kind.value_type), kind.value_type
        if kind in _CASTS or pa.types.is_decimal(kind):
            target = _CASTS.get(kind, pa.float64())
        elif pa.types.is_temporal(kind):
            target = pa.string()  # dates and times are kept as ISO 8601 text
        else:
            target = kind
        if target not in _DATATYPES:
            raise TapParameterError(
                f"column '{fld.name}' has type {kind}, which cannot be stored: use numbers, "
                "booleans or text"
            )
        try:
            column = pc.cast(column, target) if target != kind else column
        except pa.ArrowInvalid as exc:
            raise TapParameterError(f"column '{fld.name}': {exc}") from exc
        fields.append(pa.field(fld.name, target, metadata=fld.metadata))
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def columns_of(table: pa.Table) -> tuple[ColumnInfo, ...]:
    """TAP_SCHEMA descriptions of a normalized table's columns (units etc. from metadata)."""
    out = []
    for fld in table.schema:
        meta = {k.decode(): v.decode() for k, v in (fld.metadata or {}).items()}
        datatype = _DATATYPES[fld.type]
        out.append(ColumnInfo(fld.name, datatype, meta.get("description", ""),
                              meta.get("unit", ""), meta.get("ucd", ""),
                              arraysize="*" if datatype == "char" else None,
                              xtype=meta.get("xtype") or None))  # fmt: skip
    return tuple(out)


def job_result_type(job_id: str, mime: str | None) -> str:
    """The Content-Type to read a job's result as (see :func:`read_body`).

    Raises:
        TapParameterError: a JSON result, which has no column types to store.
    """
    if not mime or "json" in mime:
        raise TapParameterError(
            f"the result of job {job_id} is JSON, which cannot be saved as a table: run the "
            "query again with RESPONSEFORMAT=votable, csv or parquet"
        )
    return mime
