"""MyDB on disk: one Parquet file per user table, metadata in SQLite.

Layout under the TAP directory: ``mydb/<schema>/<table>.parquet`` (schema and table names are
checked by the service to be ``[a-z][a-z0-9_]*``, so they are safe path parts) and
``mydb.sqlite`` (SQLAlchemy Core, WAL, like the job store) with one row per table (owner,
columns with units/UCDs/descriptions, rows, bytes) and one per (table, group) share. A table is
written to a temporary file next to its final name and renamed over it, so a query reading the
old file never sees half a new one.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row

from sciplat.db import LazySqlite
from sciplat.tap.models.catalogue import ColumnInfo
from sciplat.tap.models.mydb import UserTable

_META = MetaData()
_TABLES = Table(
    "mydb_tables", _META,
    Column("schema_name", String(64), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("owner", String(255), nullable=False, index=True),
    Column("columns_json", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("rows", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created", DateTime, nullable=False),
)  # fmt: skip
_SHARES = Table(
    "mydb_shares", _META,
    Column("schema_name", String(64), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    Column("group_name", String(255), primary_key=True, index=True),
)  # fmt: skip
DB_NAME = "mydb.sqlite"




class MyDBStore:
    """User tables' files and metadata under one directory (the TAP directory)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files = directory / "mydb"
        self._db = LazySqlite(
            directory / DB_NAME,
            _META,
            lambda: self.directory.mkdir(parents=True, exist_ok=True),
        )

    @property
    def engine(self) -> Engine:
        """The metadata database, created on first use."""
        return self._db.engine

    def exists(self) -> bool:
        """Whether any user table was ever stored here (the database file exists)."""
        return (self.directory / DB_NAME).exists()

    def close(self) -> None:
        self._db.close()

    def path(self, schema: str, name: str) -> Path:
        """Where a table's Parquet file is (names already checked by the service)."""
        return self.files / schema / f"{name}.parquet"

    # reading ---------------------------------------------------------------------------------

    def get(self, schema: str, name: str) -> UserTable | None:
        """The table ``schema.name``, or None."""
        found = self._select(
            (_TABLES.c.schema_name == schema) & (_TABLES.c.table_name == name)
        )
        return found[0] if found else None

    def owned_by(self, owner: str) -> list[UserTable]:
        """``owner``'s tables, by name."""
        return self._select(_TABLES.c.owner == owner)

    def all(self) -> list[UserTable]:
        """Every user table, by schema and name."""
        return self._select(None)

    def visible_to(self, user: str, groups: Iterable[str]) -> list[UserTable]:
        """Tables ``user`` owns or that are shared with one of ``groups``."""
        shared = (
            select(_SHARES.c.group_name)
            .where(_SHARES.c.schema_name == _TABLES.c.schema_name)
            .where(_SHARES.c.table_name == _TABLES.c.table_name)
            .where(_SHARES.c.group_name.in_(list(groups)))
            .exists()
        )
        return self._select((_TABLES.c.owner == user) | shared)

    def bytes_of(self, owner: str) -> int:
        """Bytes of all ``owner``'s tables."""
        return sum(t.bytes for t in self.owned_by(owner))

    def read(self, table: UserTable) -> pa.Table:
        """A table's rows (memory-mapped, so unread columns cost no memory).

        Raises:
            OSError: the file is missing or unreadable.
        """
        return pq.read_table(self.path(table.schema, table.name), memory_map=True)

    def dataset(self, table: UserTable) -> ds.Dataset:
        """A table's file as a pyarrow dataset: DuckDB scans it lazily, reading only the
        columns and row groups a query needs.

        Raises:
            OSError: the file is missing or unreadable.
        """
        return ds.dataset(self.path(table.schema, table.name), format="parquet")

    def _select(self, where: Any) -> list[UserTable]:
        query = select(_TABLES).order_by(_TABLES.c.schema_name, _TABLES.c.table_name)
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as con:
            rows = con.execute(query).all()
            shares: dict[tuple[str, str], set[str]] = {}
            if rows:
                for s in con.execute(select(_SHARES)).all():
                    shares.setdefault((s.schema_name, s.table_name), set()).add(s.group_name)
        return [_user_table(r, shares.get((r.schema_name, r.table_name), set())) for r in rows]

    # writing ---------------------------------------------------------------------------------

    def write_file(self, schema: str, name: str, data: pa.Table) -> Path:
        """Write ``data`` to a temporary file beside the table's; returns it (see :meth:`commit`).

        Raises:
            OSError: the disk refused it.
        """
        target = self.path(schema, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            pq.write_table(data, temp, compression="zstd")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp

    def commit(self, temp: Path, table: UserTable) -> bool:
        """Move ``temp`` into place and record ``table`` (replacing one of the same name, whose
        shares are kept); returns whether it replaced one."""
        os.replace(temp, self.path(table.schema, table.name))
        values = {
            "owner": table.owner, "columns_json": json.dumps([asdict(c) for c in table.columns]),
            "description": table.description, "rows": table.rows, "bytes": table.bytes,
            "created": table.created.astimezone(UTC).replace(tzinfo=None),
        }  # fmt: skip
        key = (_TABLES.c.schema_name == table.schema) & (_TABLES.c.table_name == table.name)
        with self.engine.begin() as con:
            replaced = con.execute(update(_TABLES).where(key).values(**values)).rowcount > 0
            if not replaced:
                con.execute(insert(_TABLES).values(schema_name=table.schema,
                                                   table_name=table.name, **values))  # fmt: skip
        return replaced

    def drop(self, schema: str, name: str) -> bool:
        """Remove a table, its shares and its file; returns whether it existed."""
        with self.engine.begin() as con:
            gone = con.execute(delete(_TABLES).where(
                (_TABLES.c.schema_name == schema) & (_TABLES.c.table_name == name))).rowcount
            con.execute(delete(_SHARES).where(
                (_SHARES.c.schema_name == schema) & (_SHARES.c.table_name == name)))  # fmt: skip
        self.path(schema, name).unlink(missing_ok=True)
        return gone > 0

    def set_shared(self, schema: str, name: str, group: str, shared: bool) -> None:
        """Share the table with ``group`` or stop sharing it (idempotent)."""
        key = ((_SHARES.c.schema_name == schema) & (_SHARES.c.table_name == name)
               & (_SHARES.c.group_name == group))  # fmt: skip
        with self.engine.begin() as con:
            con.execute(delete(_SHARES).where(key))
            if shared:
                con.execute(insert(_SHARES).values(schema_name=schema, table_name=name,
                                                   group_name=group))  # fmt: skip


def _user_table(row: Row[Any], shared: set[str]) -> UserTable:
    created: datetime = row.created
    return UserTable(
        owner=row.owner, schema=row.schema_name, name=row.table_name,
        columns=tuple(ColumnInfo(**c) for c in json.loads(row.columns_json)),
        rows=row.rows, bytes=row.bytes,
        created=created.replace(tzinfo=UTC) if created.tzinfo is None else created,
        description=row.description or "", shared_with=frozenset(shared),
    )  # fmt: skip
