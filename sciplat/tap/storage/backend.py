"""The interface every catalogue backend implements (embedded DuckDB now, PostgreSQL later)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TypeAlias

import pyarrow as pa
import pyarrow.dataset as ds

from sciplat.tap.models.catalogue import Catalogue, SchemaInfo, TableInfo


class QueryCancel:
    """Set from any thread to stop a running query: the backend registers what stops it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._set = False

    @property
    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Stop the query (idempotent); runs every registered callback once."""
        with self._lock:
            if self._set:
                return
            self._set = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` when set (now, if already set); returns a function that unregisters."""
        with self._lock:
            if not self._set:
                self._callbacks.append(callback)
                return lambda: self._discard(callback)
        callback()
        return lambda: None

    def _discard(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


#: A table :meth:`CatalogueBackend.run` is handed (an upload, a user's table): an Arrow table,
#: or, for a backend with ``scans_datasets``, a pyarrow dataset of Parquet files read lazily.
UploadData: TypeAlias = "pa.Table | ds.Dataset"


class CatalogueBackend(ABC):
    """Stores catalogue tables with their TAP_SCHEMA metadata and runs translated SQL.

    The SQL handed to :meth:`run` always comes from the ADQL translator, never from a user.
    """

    dialect: str = "duckdb"
    #: Where the translated SQL finds uploaded tables: ADQL ``TAP_UPLOAD.t`` becomes
    #: ``"<part>"."<part>"."t"``, one quoted part per dot-separated part of this value.
    #: :meth:`run` must make each upload visible under exactly that name, to that one call only
    #: (DuckDB: ``temp.main``, views registered on the query's own cursor; PostgreSQL:
    #: ``pg_temp``, ``CREATE TEMP TABLE ... ON COMMIT DROP`` in the query's transaction).
    upload_schema: str = "temp.main"
    #: Whether :meth:`run` reads pyarrow datasets in ``uploads`` lazily (DuckDB); otherwise
    #: callers hand it Arrow tables.
    scans_datasets: bool = False

    @abstractmethod
    def catalogue(self) -> Catalogue:
        """The published tables (TAP_SCHEMA included), as loaded now."""

    @abstractmethod
    def run(
        self,
        sql: str,
        timeout: float,
        uploads: Mapping[str, UploadData] | None = None,
        cancel: QueryCancel | None = None,
    ) -> pa.Table:
        """Run one translated query.

        ``uploads`` maps lower-case names (``[a-z][a-z0-9_]{0,63}``, checked by the caller) to
        tables (:data:`UploadData`) that the SQL reads as ``<upload_schema>."<name>"``; they
        exist for this call only and no other query, concurrent or later, can see them.
        Setting ``cancel`` (from any thread) stops the query in the database as soon as it
        can; so does ``timeout``.

        Raises:
            QueryFailedError: the database refused the query, it ran past ``timeout`` seconds,
                or ``cancel`` was set (the message says which).
        """

    @abstractmethod
    def load_table(self, info: TableInfo, schema: SchemaInfo, data: pa.Table) -> int:
        """Create or replace one table and its metadata; returns the number of rows.

        Raises:
            CatalogueLoadError: the data does not fit the description or cannot be stored.
        """

    def close(self) -> None:  # noqa: B027 - optional for backends without connections
        """Release connections."""
