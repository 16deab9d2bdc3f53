"""CSV and JSON results, straight from Arrow."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from sciplat.tap.models.catalogue import ColumnInfo


def write_csv(table: pa.Table) -> bytes:
    """RFC 4180 CSV with a header line."""
    out = io.BytesIO()
    pacsv.write_csv(table, out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def write_json(table: pa.Table, columns: dict[str, ColumnInfo], overflow: bool) -> bytes:
    """``{"metadata": [...], "data": [[...], ...], "overflow": bool}``."""
    meta = []
    for name in table.column_names:
        info = columns.get(name.lower())
        meta.append({
            "name": name, "datatype": str(table.schema.field(name).type),
            "unit": info.unit if info else "", "ucd": info.ucd if info else "",
            "description": info.description if info else "",
        })  # fmt: skip
    rows = [[_plain(v) for v in row.values()] for row in table.to_pylist()]
    return json.dumps({"metadata": meta, "data": rows, "overflow": overflow}).encode()
