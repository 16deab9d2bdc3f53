"""The platform's state database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


class Base(DeclarativeBase):
    """Base of every table the platform owns."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # The CLI writes while the hub runs: WAL lets readers and one writer share the file.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class Database:
    """An engine, a session factory and the schema, created on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        """A new session; use as a context manager."""
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()


class LazySqlite:
    """An SQLite file of a service's own (TAP jobs, MyDB metadata), opened on first use so a
    command that never touches it leaves no file; ``prepare`` runs once before (e.g. makes
    directories). Same pragmas as the state database; safe to share between threads."""

    def __init__(
        self, path: Path, metadata: MetaData, prepare: Callable[[], None] | None = None
    ) -> None:
        self.path = path
        self.metadata = metadata
        self.prepare = prepare
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    if self.prepare is not None:
                        self.prepare()
                    engine = create_engine(f"sqlite:///{self.path}")
                    event.listen(engine, "connect", _sqlite_pragmas)
                    self.metadata.create_all(engine)
                    self._engine = engine
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
