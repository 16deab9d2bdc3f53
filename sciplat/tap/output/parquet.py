"""Parquet results (``FORMAT=parquet``), written by pyarrow straight from the Arrow result.

Column units, UCDs and descriptions travel as Arrow field metadata (keys ``unit``, ``ucd``,
``description``, ``datatype``) and the query status as schema metadata (``QUERY_STATUS``:
``OK`` or ``OVERFLOW``), so ``pyarrow.parquet.read_table`` gives them back.
"""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq

from sciplat.tap.models.catalogue import ColumnInfo

MIME = "application/vnd.apache.parquet"


def _field(field: pa.Field, info: ColumnInfo | None) -> pa.Field:
    if info is None:
        return field
    meta = {
        key: value
        for key, value in (("unit", info.unit), ("ucd", info.ucd),
                           ("description", info.description), ("datatype", info.datatype))
        if value
    }  # fmt: skip
    return field.with_metadata(meta) if meta else field


def write_parquet(table: pa.Table, columns: dict[str, ColumnInfo], overflow: bool) -> bytes:
    """The whole result as one Parquet file (zstd-compressed)."""
    schema = pa.schema(
        [_field(f, columns.get(f.name.lower())) for f in table.schema],
        metadata={"QUERY_STATUS": "OVERFLOW" if overflow else "OK"},
    )
    out = io.BytesIO()
    pq.write_table(table.cast(schema), out, compression="zstd")
    return out.getvalue()
