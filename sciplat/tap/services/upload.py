"""TAP table uploads (TAP 1.1 §2.5.2, DALI UPLOAD): VOTables in, Arrow tables out.

``UPLOAD=name,param:part`` names a part of the multipart request; several tables are separated
by ``;``. Each becomes ``TAP_UPLOAD.<name>`` for the one query that carries it.
``http(s)://`` URIs (DALI: services with UPLOAD must support http or https) are fetched by
:class:`~sciplat.tap.storage.urlfetch.UrlFetcher`, only from addresses ``upload_url_networks``
allows (globally routable ones by default: never loopback, where the hub's API listens, nor
private or link-local networks). Other schemes are refused. Limits: ``max_upload_bytes`` on the
request body (enforced while it is read, in the handler) and on each fetched file,
``max_upload_rows`` on the rows of all its tables together.

astropy parses the VOTable (every serialization, nulls, units, UCDs); the Arrow table keeps
units, UCDs, descriptions and xtypes as field metadata, so a table stored with an async job and read
back describes itself the same way (:func:`upload_from_arrow`).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
from astropy.io import votable
from astropy.table import Table

from sciplat.tap.config import TapConfig
from sciplat.tap.errors import TapParameterError
from sciplat.tap.models.catalogue import ColumnInfo, TableInfo
from sciplat.tap.models.query import Upload
from sciplat.tap.storage.urlfetch import UrlFetcher

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_MAX_TABLES = 16
_VOTABLE_TYPES = {
    pa.bool_(): "boolean", pa.uint8(): "unsignedByte", pa.int8(): "short", pa.int16(): "short",
    pa.int32(): "int", pa.int64(): "long", pa.float32(): "float", pa.float64(): "double",
    pa.string(): "char",
}  # fmt: skip


def parse_upload_param(value: str) -> list[tuple[str, str]]:
    """``name,uri;name,uri`` → [(lower-case name, uri)].

    Raises:
        TapParameterError: a malformed pair, a bad or repeated name, or too many tables.
    """
    pairs: list[tuple[str, str]] = []
    for item in filter(None, (p.strip() for p in value.split(";"))):
        name, sep, uri = item.partition(",")
        name, uri = name.strip(), uri.strip()
        if not sep or not uri:
            raise TapParameterError(
                f"UPLOAD={item} is not 'name,uri': write UPLOAD=mytable,param:mytable and send "
                "the VOTable as the multipart part 'mytable'"
            )
        if not NAME.match(name):
            raise TapParameterError(
                f"upload table name '{name}' is not allowed: use a letter followed by up to 63 "
                "letters, digits or underscores"
            )
        if any(n == name.lower() for n, _ in pairs):
            raise TapParameterError(f"upload table name '{name}' is used twice in UPLOAD")
        pairs.append((name.lower(), uri))
    if len(pairs) > _MAX_TABLES:
        raise TapParameterError(f"at most {_MAX_TABLES} tables may be uploaded with one query")
    return pairs


def _arrow_column(name: str, column: np.ndarray) -> pa.Array:
    """One astropy column as Arrow; masked cells become nulls."""
    if column.ndim > 1:
        raise TapParameterError(
            f"upload column '{name}' holds arrays; only scalar columns can be uploaded"
        )
    mask = np.ma.getmaskarray(column)
    values = np.ma.getdata(column)
    kind = values.dtype.kind
    if kind == "S":
        values = np.char.decode(values, "utf-8", "replace")
        kind = "U"
    if kind in "UO":
        if kind == "O" and any(isinstance(v, np.ndarray) for v in values):
            raise TapParameterError(f"upload column '{name}' holds variable-length arrays")
        text = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
        return pa.array(text, pa.string(), mask=mask)
    if kind in "biuf":
        return pa.array(values, mask=mask if mask.any() else None)
    raise TapParameterError(f"upload column '{name}' has an unsupported type ({values.dtype})")


def _metadata(column: Table.Column) -> dict[str, str]:
    meta = {
        "unit": str(column.unit) if column.unit is not None else "",
        "ucd": str(column.meta.get("ucd") or ""),
        "description": str(column.description or ""),
        "xtype": str(column.meta.get("xtype") or ""),
    }
    return {k: v for k, v in meta.items() if v}


def upload_from_arrow(name: str, table: pa.Table) -> Upload:
    """The Upload of an Arrow table (metadata from its field metadata).

    Raises:
        TapParameterError: a column type ADQL cannot use.
    """
    columns = []
    for field in table.schema:
        datatype = _VOTABLE_TYPES.get(field.type)
        if datatype is None:
            raise TapParameterError(
                f"upload column '{field.name}' has type {field.type}, which queries cannot use"
            )
        meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        columns.append(ColumnInfo(field.name, datatype, meta.get("description", ""),
                                  meta.get("unit", ""), meta.get("ucd", ""),
                                  xtype=meta.get("xtype") or None))  # fmt: skip
    return Upload(TableInfo("TAP_UPLOAD", name, tuple(columns)), table)


class UploadService:
    """Turns the UPLOAD parameter and the request's files into this query's tables."""

    def __init__(self, config: TapConfig, fetcher: UrlFetcher | None = None) -> None:
        """Raises ValueError: an ``upload_url_networks`` entry that is not a network."""
        self.max_bytes = config.max_upload_bytes
        self.max_rows = config.max_upload_rows
        self.fetcher = fetcher or UrlFetcher(
            config.upload_url_networks, config.max_upload_bytes, config.upload_url_seconds
        )

    def tables(self, upload: str | None, files: Mapping[str, bytes]) -> dict[str, Upload]:
        """The uploads named by ``upload`` (the UPLOAD parameter), read from ``files``.

        Raises:
            TapParameterError: a bad UPLOAD value, a refused or missing URI, a URL that
                cannot be fetched, a file that is not a readable VOTable, or more rows than
                ``max_upload_rows``.
        """
        if not upload:
            return {}
        found: dict[str, Upload] = {}
        rows = 0
        for name, uri in parse_upload_param(upload):
            scheme, _, part = uri.partition(":")
            if scheme.lower() in ("http", "https"):
                data = self.fetcher.fetch(name, uri)
            elif scheme.lower() != "param":
                raise TapParameterError(
                    f"UPLOAD {name}: {uri} cannot be fetched by this service (param:, http: and "
                    "https: URIs are accepted); send the VOTable in the request as a multipart "
                    f"part and write UPLOAD={name},param:<part name>"
                )
            elif part not in files:
                raise TapParameterError(
                    f"UPLOAD {name}: the request has no file part called '{part}' (it has: "
                    f"{', '.join(sorted(files)) or 'none'})"
                )
            else:
                data = files[part]
            table = read_votable(name, data)
            rows += table.num_rows
            if rows > self.max_rows:
                raise TapParameterError(
                    f"the uploaded tables have more than {self.max_rows} rows, this service's "
                    "limit (max_upload_rows): upload fewer rows or split the query"
                )
            found[name] = upload_from_arrow(name, table)
        return found


def read_votable(name: str, data: bytes) -> pa.Table:
    """The first table of a VOTable document, as Arrow with units/UCDs as field metadata.

    Raises:
        TapParameterError: not a VOTable astropy can read, no table in it, or a column that
            cannot be uploaded (arrays, duplicate names).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns about every spec deviation
            document = votable.parse(io.BytesIO(data), verify="ignore")
            source = document.get_first_table().to_table(use_names_over_ids=True)
    except Exception as exc:  # astropy raises many types (XML, spec, value errors)
        raise TapParameterError(
            f"UPLOAD {name}: not a VOTable that can be read ({type(exc).__name__}: "
            f"{str(exc)[:200]})"
        ) from exc
    seen: set[str] = set()
    fields, arrays = [], []
    for colname in source.colnames:
        if colname.lower() in seen:
            raise TapParameterError(f"UPLOAD {name}: two columns are called '{colname}'")
        seen.add(colname.lower())
        column = source[colname]
        array = _arrow_column(colname, column)
        fields.append(pa.field(colname, array.type).with_metadata(_metadata(column)))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
