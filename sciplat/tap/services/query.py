"""A synchronous TAP query: translate, run with a deadline, cut at MAXREC, serialize."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sciplat.tap.adql.translate import translate
from sciplat.tap.config import TapConfig
from sciplat.tap.errors import TapParameterError
from sciplat.tap.models.catalogue import ColumnInfo
from sciplat.tap.models.query import Caller, QueryRequest, QueryResult, Upload
from sciplat.tap.output.parquet import write_parquet
from sciplat.tap.output.text import write_csv, write_json
from sciplat.tap.output.votable import write_votable
from sciplat.tap.services.access import AccessService
from sciplat.tap.storage.backend import CatalogueBackend, QueryCancel

if TYPE_CHECKING:
    from sciplat.tap.services.mydb import MyDBService

log = logging.getLogger(__name__)
_LANGS = {"adql", "adql-2.0", "adql-2.1"}

# FORMAT / RESPONSEFORMAT values (TAP 1.1 §2.7.1) → (our format, MIME type)
FORMATS: dict[str, tuple[str, str]] = {
    "votable": ("votable", "application/x-votable+xml"),
    "application/x-votable+xml": ("votable", "application/x-votable+xml"),
    "text/xml": ("votable", "text/xml"),
    "votable/b2": ("votable", "application/x-votable+xml;serialization=BINARY2"),
    "application/x-votable+xml;serialization=binary2": (
        "votable", "application/x-votable+xml;serialization=BINARY2"),
    "votable/td": ("votable-td", "application/x-votable+xml;serialization=TABLEDATA"),
    "application/x-votable+xml;serialization=tabledata": (
        "votable-td", "application/x-votable+xml;serialization=TABLEDATA"),
    "csv": ("csv", "text/csv;header=present"),
    "text/csv": ("csv", "text/csv;header=present"),
    "json": ("json", "application/json"),
    "application/json": ("json", "application/json"),
    "parquet": ("parquet", "application/vnd.apache.parquet"),
    "application/vnd.apache.parquet": ("parquet", "application/vnd.apache.parquet"),
    "application/x-parquet": ("parquet", "application/vnd.apache.parquet"),
}  # fmt: skip


def parse_format(value: str | None) -> tuple[str, str]:
    """(format, MIME type) of a FORMAT/RESPONSEFORMAT value; default BINARY2 VOTable.

    Raises:
        TapParameterError: a format this service does not write.
    """
    if not value:
        return FORMATS["votable"]
    key = value.strip().lower().replace(" ", "")
    if key not in FORMATS:
        raise TapParameterError(
            f"RESPONSEFORMAT={value} is not supported: use votable (BINARY2), votable/td, csv, "
            "json or parquet"
        )
    return FORMATS[key]


class QueryService:
    """Runs ADQL for a caller against one backend."""

    def __init__(
        self,
        config: TapConfig,
        backend: CatalogueBackend,
        access: AccessService,
        mydb: MyDBService | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.access = access
        self.mydb = mydb  # users' own tables, given to the backend like uploads

    def maxrec(self, requested: str | None) -> int:
        """The row limit for a request.

        Raises:
            TapParameterError: not a number, negative, or above the service's limit.
        """
        if requested is None or requested == "":
            return self.config.default_maxrec
        try:
            value = int(requested)
        except ValueError:
            raise TapParameterError(f"MAXREC={requested} is not a whole number") from None
        if value < 0 or value > self.config.max_maxrec:
            raise TapParameterError(
                f"MAXREC must be between 0 and {self.config.max_maxrec}, not {value}"
            )
        return value

    def request(self, values: Mapping[str, str], uploads: Mapping[str, Upload]) -> QueryRequest:
        """The checked query of a sync request or an async job (upper-case parameter names).

        Raises:
            TapParameterError: a bad REQUEST, LANG, FORMAT or MAXREC.
        """
        if values.get("REQUEST", "doQuery").lower() != "doquery":
            raise TapParameterError(f"REQUEST={values['REQUEST']} is not supported: use doQuery")
        lang = values.get("LANG", "ADQL")
        if lang.lower() not in _LANGS:
            raise TapParameterError(f"LANG={lang} is not supported: this service speaks ADQL")
        fmt, _ = parse_format(values.get("RESPONSEFORMAT") or values.get("FORMAT"))
        maxrec = self.maxrec(values.get("MAXREC"))
        return QueryRequest(query=values.get("QUERY", ""), format=fmt,  # type: ignore[arg-type]
                            maxrec=maxrec, uploads=dict(uploads))  # fmt: skip

    def timeout(self, caller: Caller, limit: float | None = None) -> float:
        """Seconds the database may take: ``limit`` (an async job's executionduration, else
        ``sync_timeout``), shortened by the caller's query_seconds quota."""
        timeout = limit if limit is not None else self.config.sync_timeout
        if caller.max_seconds is not None:
            timeout = min(timeout, caller.max_seconds)
        return timeout

    async def run(
        self,
        caller: Caller,
        request: QueryRequest,
        limit: float | None = None,
        cancel: QueryCancel | None = None,
    ) -> QueryResult:
        """Translate and run one query; ``limit`` replaces ``sync_timeout`` (async jobs) and
        setting ``cancel`` stops it in the database.

        Raises:
            AdqlSyntaxError, AdqlUnsupportedError, UnknownTableError, UnknownColumnError: the
                query; QueryFailedError: the database refused it or it timed out.
        """
        started = time.perf_counter()
        catalogue = self.backend.catalogue()
        # the caller's query_rows quota caps MAXREC (and so shows as an overflow), and their
        # query_seconds quota shortens the time the database may take
        maxrec = request.maxrec
        if caller.max_rows is not None:
            maxrec = caller.max_rows if maxrec is None else min(maxrec, caller.max_rows)
        timeout = self.timeout(caller, limit)
        view = self.mydb.view(caller, catalogue, request.uploads) if self.mydb else None
        translation = translate(
            request.query,
            view.catalogue if view else catalogue,
            lambda table: self.access.may_read(caller, table),
            maxrec,
            {name: upload.info for name, upload in request.uploads.items()},
            self.backend.upload_schema,
            dialect=self.backend.dialect,
            # without user tables nothing moves: no relocation, so the translation cache serves
            relocate=view.relocate if view and view.tables else None,
        )
        uploads: dict[str, Any] = {n: upload.table for n, upload in request.uploads.items()}
        if view is not None and view.wanted:
            # DuckDB registers a pyarrow dataset as it does a table, and scans it lazily
            lazy = self.backend.scans_datasets
            uploads.update(await asyncio.to_thread(view.load, lazy))
        table = await asyncio.to_thread(
            self.backend.run, translation.sql, timeout, uploads or None, cancel
        )
        overflow = maxrec is not None and table.num_rows > maxrec
        if overflow and maxrec is not None:
            table = table.slice(0, maxrec)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("tap query by %s: %d rows in %.1f ms", caller.name or "anonymous",
                 table.num_rows, elapsed)  # fmt: skip
        columns = tuple(
            translation.columns.get(name.lower()) or ColumnInfo(name, "")
            for name in table.column_names
        )
        return QueryResult(table, columns, overflow, elapsed)

    @staticmethod
    def serialize(result: QueryResult, fmt: str) -> bytes:
        """The result in one of the formats of :data:`FORMATS`."""
        meta = {c.name.lower(): c for c in result.columns if c.datatype}
        if fmt == "csv":
            return write_csv(result.table)
        if fmt == "json":
            return write_json(result.table, meta, result.overflow)
        if fmt == "parquet":
            return write_parquet(result.table, meta, result.overflow)
        serialization = "tabledata" if fmt == "votable-td" else "binary2"
        return write_votable(result.table, meta, serialization, result.overflow)
