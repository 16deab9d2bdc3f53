"""The interface every catalogue backend implements (embedded DuckDB now, PostgreSQL later)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa

from sciplat.tap.models.catalogue import Catalogue, SchemaInfo, TableInfo


class CatalogueBackend(ABC):
    """Stores catalogue tables with their TAP_SCHEMA metadata and runs translated SQL.

    The SQL handed to :meth:`run` always comes from the ADQL translator, never from a user.
    """

    dialect: str = "duckdb"

    @abstractmethod
    def catalogue(self) -> Catalogue:
        """The published tables (TAP_SCHEMA included), as loaded now."""

    @abstractmethod
    def run(self, sql: str, timeout: float) -> pa.Table:
        """Run one translated query.

        Raises:
            QueryFailedError: the database refused the query or it ran past ``timeout`` seconds.
        """

    @abstractmethod
    def load_table(self, info: TableInfo, schema: SchemaInfo, data: pa.Table) -> int:
        """Create or replace one table and its metadata; returns the number of rows.

        Raises:
            CatalogueLoadError: the data does not fit the description or cannot be stored.
        """

    def close(self) -> None:  # noqa: B027 - optional for backends without connections
        """Release connections."""
