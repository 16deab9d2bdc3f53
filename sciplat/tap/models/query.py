"""A TAP query as the service receives it, and what comes back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from sciplat.tap.models.catalogue import ColumnInfo, TableInfo

OutputFormat = Literal["votable", "votable-td", "csv", "json", "parquet"]


@dataclass(frozen=True)
class Caller:
    """Who asks: a hub user (with groups and token scopes) or nobody (anonymous)."""

    name: str | None = None
    groups: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    #: the caller's query_rows and query_seconds quotas (None: unlimited)
    max_rows: int | None = None
    max_seconds: float | None = None

    @property
    def anonymous(self) -> bool:
        return self.name is None


@dataclass(frozen=True)
class QueryRequest:
    """A TAP query (sync or one async job's), parameters already checked."""

    query: str
    format: OutputFormat = "votable"
    maxrec: int | None = None
    #: TAP_UPLOAD tables by lower-case name (see :class:`Upload`)
    uploads: Mapping[str, Upload] = field(default_factory=dict)


@dataclass(frozen=True)
class Upload:
    """One uploaded table: its rows and its TAP_UPLOAD.<name> metadata."""

    info: TableInfo
    table: pa.Table


@dataclass(frozen=True)
class Translation:
    """The SQL built from an ADQL query, and how to describe its result columns."""

    sql: str
    limit: int | None
    columns: dict[str, ColumnInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class QueryResult:
    """Rows of a finished query; ``overflow`` when MAXREC cut it short."""

    table: pa.Table
    columns: tuple[ColumnInfo, ...]
    overflow: bool = False
    elapsed_ms: float = 0.0
