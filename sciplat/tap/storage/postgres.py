"""The production catalogue backend: PostgreSQL with pgSphere, through psycopg 3.

Layout in the database the ``dsn`` names (its role owns everything below):

- one schema per catalogue schema, one table per catalogue table, rows sorted by HEALPix (the
  same :func:`~sciplat.tap.storage.duckdb.prepare_table` as DuckDB, so the two backends hold the
  same rows and TAP_SCHEMA), and for a table with sky positions a GiST index on
  ``spoint(radians(ra), radians(dec))``: the expression the pgSphere translator writes;
- ``"TAP_SCHEMA"``, a real schema with the five TAP 1.1 tables;
- ``sciplat_meta.spatial`` (which columns hold the positions) and ``sciplat_meta.state`` (a
  generation number every load bumps, so services notice new tables).

Queries never run as that owner: they run as ``query_role``, a login role that can read
TAP_SCHEMA, sciplat_meta and the published schemas and nothing else, with
``default_transaction_read_only`` on. A query is one statement on a pooled autocommit
connection whose ``statement_timeout`` is the query's limit, so PostgreSQL itself stops a query
that runs too long; a :class:`~sciplat.tap.storage.backend.QueryCancel` (and a watchdog, two
seconds after the limit) sends cancel requests to the server. A query with uploads runs in a
transaction that creates them as ``pg_temp`` tables and is rolled back at the end.
"""

from __future__ import annotations

import io
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg import sql as q
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from sciplat.tap.errors import CatalogueLoadError, QueryFailedError
from sciplat.tap.models.catalogue import Catalogue, SchemaInfo, SpatialIndex, TableInfo
from sciplat.tap.storage.backend import CatalogueBackend, QueryCancel, UploadData
from sciplat.tap.storage.duckdb import prepare_table
from sciplat.tap.storage.postgres_cancel import Canceller
from sciplat.tap.storage.watchdog import Watchdog
from sciplat.tap.tap_schema import (
    SCHEMA,
    TAP_SCHEMA_TABLES,
    build_rows,
    read_catalogue,
    with_tap_schema,
)

_META = "sciplat_meta"
_WATCHDOG = Watchdog()
# statement_timeout last set on each pooled connection (milliseconds)
_TIMEOUTS: weakref.WeakKeyDictionary[psycopg.Connection[Any], int] = weakref.WeakKeyDictionary()
_LOCK_KEY = 0x5C1_7A9  # pg_advisory_xact_lock key: one setup or load at a time per database
_COPY_BATCH = 500_000  # rows per CSV chunk streamed to COPY

# VOTable datatypes → PostgreSQL column types
VOTABLE_TO_PG = {
    "boolean": "boolean",
    "unsignedByte": "smallint",
    "short": "smallint",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
    "char": "text",
    "unicodeChar": "text",
}

# result column type OIDs → Arrow types (anything else: Arrow infers from the values)
_OID_TO_ARROW: dict[int, pa.DataType] = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 26: pa.int64(),
    700: pa.float32(), 701: pa.float64(), 1700: pa.float64(),
    18: pa.string(), 19: pa.string(), 25: pa.string(), 1042: pa.string(), 1043: pa.string(),
    1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"),
}  # fmt: skip


def _arrow_to_pg(field: pa.Field) -> str:
    """The column type of an upload column.

    Raises:
        QueryFailedError: an Arrow type uploads cannot have.
    """
    kind = field.type
    simple = [
        (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "smallint"),
        (pa.types.is_int16, "smallint"), (pa.types.is_uint8, "smallint"),
        (pa.types.is_int32, "integer"), (pa.types.is_uint16, "integer"),
        (pa.types.is_int64, "bigint"), (pa.types.is_uint32, "bigint"),
        (pa.types.is_float32, "real"), (pa.types.is_float64, "double precision"),
        (pa.types.is_string, "text"), (pa.types.is_large_string, "text"),
    ]  # fmt: skip
    for test, name in simple:
        if test(kind):
            return name
    if pa.types.is_timestamp(kind):
        return "timestamp with time zone" if kind.tz else "timestamp"
    raise QueryFailedError(
        f"uploaded column '{field.name}' has type {kind}, which this service cannot store: "
        "use numbers, booleans, text or timestamps"
    )


def _message(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or str(exc).split("\n")[0]


class PostgresBackend(CatalogueBackend):
    """Catalogue tables in PostgreSQL + pgSphere; see the module docstring for the layout."""

    dialect = "postgres"
    upload_schema = "pg_temp"

    def __init__(
        self,
        dsn: str,
        query_role: str = "sciplat_tap",
        pool_size: int = 4,
        metadata_seconds: float = 1.0,
    ) -> None:
        self.dsn = dsn
        self.query_role = query_role
        self.pool_size = pool_size
        self.metadata_seconds = metadata_seconds
        self._lock = threading.Lock()
        self._prepared = False
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._meta_conn: psycopg.Connection[Any] | None = None
        self._cached: tuple[float, int, Catalogue] | None = None

    def _connect_owner(self, autocommit: bool = False) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.dsn, autocommit=autocommit, connect_timeout=10)
        except psycopg.Error as exc:
            raise CatalogueLoadError(
                f"cannot connect to the catalogue database ({_message(exc)}): check services.tap"
                ".dsn and that PostgreSQL is running"
            ) from exc

    def query_conninfo(self) -> str:
        """The DSN with the query role as user (its password comes from libpq's passfile)."""
        params = conninfo_to_dict(self.dsn)
        params.pop("password", None)
        params["user"] = self.query_role
        return make_conninfo("", **params)

    def _query_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool = self._pool
        if pool is not None:
            return pool
        self.prepare()
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.query_conninfo(),
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"connect_timeout": 10, "autocommit": True},
                    open=True,
                    name="sciplat-tap",
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            if self._meta_conn is not None:
                self._meta_conn.close()
                self._meta_conn = None

    def prepare(self) -> None:
        """Create pgSphere, TAP_SCHEMA, sciplat_meta and the query role where missing (idempotent).

        Raises:
            CatalogueLoadError: the database is unreachable, pgSphere is not installed on the
                server, or the owner may not create what is missing.
        """
        if self._prepared:
            return
        with self._connect_owner() as conn, conn.cursor() as cur:
            try:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                _create_extension(cur)
                _create_metadata(cur)
                self._create_role(cur)
                self._grant(cur, [SCHEMA, _META])
            except psycopg.Error as exc:
                raise CatalogueLoadError(
                    f"cannot prepare the catalogue database: {_message(exc)}"
                ) from exc
        self._prepared = True

    def _create_role(self, cur: psycopg.Cursor[Any]) -> None:
        role = q.Identifier(self.query_role)
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.query_role,))
        if cur.fetchone() is None:
            try:
                cur.execute(q.SQL("CREATE ROLE {} LOGIN").format(role))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise CatalogueLoadError(
                    f"the query role {self.query_role} does not exist and the owner may not "
                    f"create it: run CREATE ROLE {self.query_role} LOGIN as a superuser"
                ) from exc
        cur.execute("SELECT current_database()")
        database = q.Identifier(str(_one(cur)))
        for setting, value in (("default_transaction_read_only", "on"),
                               ("search_path", "public")):  # fmt: skip
            cur.execute(
                q.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
                    role, database, q.Identifier(setting), q.Literal(value)
                )
            )
        cur.execute(q.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))

    def _grant(self, cur: psycopg.Cursor[Any], schemas: Iterable[str]) -> None:
        role = q.Identifier(self.query_role)
        for schema in schemas:
            cur.execute(q.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(q.Identifier(schema), role))
            cur.execute(
                q.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                    q.Identifier(schema), role
                )
            )

    def catalogue(self) -> Catalogue:
        """The published tables, re-read when a load has bumped the generation.

        Raises:
            QueryFailedError: the database cannot be reached.
        """
        cached = self._cached
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.metadata_seconds:
            return cached[2]
        self.prepare()
        with self._lock:
            try:
                conn = self._meta_conn
                if conn is None or conn.closed:
                    conn = self._meta_conn = self._connect_owner(autocommit=True)
                with conn.cursor() as cur:
                    cur.execute(f"SELECT generation FROM {_META}.state")  # noqa: S608 - constant
                    generation = int(_one(cur))
                    if cached is None or cached[1] != generation:
                        catalogue = with_tap_schema(_read_metadata(cur))
                    else:
                        catalogue = cached[2]
            except psycopg.Error as exc:
                self._meta_conn = None
                raise QueryFailedError(
                    f"the catalogue database cannot be read: {_message(exc)}"
                ) from exc
            self._cached = (now, generation, catalogue)
            return catalogue

    def run(
        self,
        sql: str,
        timeout: float,
        uploads: Mapping[str, UploadData] | None = None,
        cancel: QueryCancel | None = None,
    ) -> pa.Table:
        if cancel is not None and cancel.is_set:
            raise QueryFailedError("the query was aborted")
        try:
            pool = self._query_pool()
            with pool.connection(timeout=max(timeout, 1.0)) as conn:
                canceller = Canceller(conn)
                unregister = cancel.on_set(canceller.start) if cancel else (lambda: None)
                # statement_timeout stops it in the server; this is the backstop if it does not
                backstop = _WATCHDOG.add(timeout + 2.0, canceller.start)
                try:
                    return _execute(conn, sql, timeout, uploads or {})
                finally:
                    _WATCHDOG.remove(backstop)
                    unregister()
                    canceller.stop()  # before the connection can serve another query
                    if conn.info.transaction_status != TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")  # an upload query's: drops its tables
        except psycopg.errors.QueryCanceled as exc:
            if cancel is not None and cancel.is_set:
                raise QueryFailedError("the query was aborted") from exc
            raise QueryFailedError(
                f"the query ran longer than {timeout:g} s and was stopped: narrow it (a smaller "
                "region, TOP n, fewer columns) or use the asynchronous endpoint"
            ) from exc
        except psycopg.Error as exc:
            raise QueryFailedError(
                f"the database could not run the query: {_message(exc)}"
            ) from exc
        except (PoolTimeout, CatalogueLoadError) as exc:
            raise QueryFailedError(f"the catalogue database is not available: {exc}") from exc

    def load_table(self, info: TableInfo, schema: SchemaInfo, data: pa.Table) -> int:
        """Create or replace ``info`` from ``data`` in one transaction; returns the row count.

        Readers see the old table until the commit: the new one is built under a temporary
        name and swapped in at the end.

        Raises:
            CatalogueLoadError: a described column is missing, or the database refuses the data.
        """
        data = prepare_table(info, data)
        self.prepare()
        try:
            with self._connect_owner() as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                cur.execute("SET LOCAL maintenance_work_mem = '512MB'")  # the index build's
                previous = _read_metadata(cur)
                self._store(cur, info, data)
                catalogue = _replace(previous, info, schema)
                _write_metadata(cur, catalogue)
                self._grant(cur, [info.schema, SCHEMA, _META])
                cur.execute(f"UPDATE {_META}.state SET generation = generation + 1")  # noqa: S608
        except psycopg.Error as exc:
            raise CatalogueLoadError(f"cannot store {info.qualified}: {_message(exc)}") from exc
        self._cached = None
        return int(data.num_rows)

    def _store(self, cur: psycopg.Cursor[Any], info: TableInfo, data: pa.Table) -> None:
        schema = q.Identifier(info.schema)
        staging_name = f"{info.name[:40]}__load_{os.getpid()}"
        staging = q.Identifier(info.schema, staging_name)
        target = q.Identifier(info.schema, info.name)
        names = [c.name for c in info.columns]
        cur.execute(q.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        cur.execute(q.SQL("DROP TABLE IF EXISTS {}").format(staging))
        columns = q.SQL(", ").join(
            q.SQL("{} {}").format(
                q.Identifier(c.name), q.SQL(VOTABLE_TO_PG.get(c.datatype, "text"))
            )
            for c in info.columns
        )
        cur.execute(q.SQL("CREATE TABLE {} ({})").format(staging, columns))
        _copy_arrow(cur, staging, data.select(names))
        index = f"{info.name[:50]}_spoint"
        if info.spatial is not None:
            ra, dec = q.Identifier(info.spatial.ra), q.Identifier(info.spatial.dec)
            cur.execute(
                q.SQL("CREATE INDEX {} ON {} USING gist (spoint(radians({}), radians({})))").format(
                    q.Identifier(f"{staging_name}_spoint"), staging, ra, dec
                )
            )
        cur.execute(q.SQL("ANALYZE {}").format(staging))
        cur.execute(q.SQL("DROP TABLE IF EXISTS {}").format(target))
        cur.execute(q.SQL("ALTER TABLE {} RENAME TO {}").format(staging, q.Identifier(info.name)))
        if info.spatial is not None:
            cur.execute(
                q.SQL("ALTER INDEX {} RENAME TO {}").format(
                    q.Identifier(info.schema, f"{staging_name}_spoint"), q.Identifier(index)
                )
            )

    # MyDB (users' tables): real tables in the user's schema, so queries read them in place
    # instead of copying them into pg_temp for every query (12 s per million rows here)

    def store_user_table(self, info: TableInfo, data: pa.Table) -> None:
        """Create or replace a user's table ``info`` from ``data`` in one transaction, readable
        by the query role. TAP_SCHEMA is not touched: the TAP service lists user tables only
        to the callers who may read them (services/mydb.py).

        Raises:
            CatalogueLoadError: the database refuses the data.
        """
        self.prepare()
        try:
            with self._connect_owner() as conn, conn.cursor() as cur:
                self._store(cur, info, data)
                self._grant(cur, [info.schema])
        except psycopg.Error as exc:
            raise CatalogueLoadError(f"cannot store {info.qualified}: {_message(exc)}") from exc

    def drop_user_table(self, schema: str, name: str) -> None:
        """Drop a user's table (nothing happens if it is not there).

        Raises:
            CatalogueLoadError: the database refuses.
        """
        try:
            with self._connect_owner() as conn:
                conn.execute(q.SQL("DROP TABLE IF EXISTS {}").format(q.Identifier(schema, name)))
        except psycopg.Error as exc:
            raise CatalogueLoadError(f"cannot drop {schema}.{name}: {_message(exc)}") from exc


def _execute(
    conn: psycopg.Connection[Any], sql: str, timeout: float, uploads: Mapping[str, UploadData]
) -> pa.Table:
    """One statement in autocommit mode (one round trip), or, with uploads, a transaction that
    creates them as temporary tables, runs the query and is rolled back by the caller."""
    milliseconds = max(1, int(timeout * 1000))
    with conn.cursor(binary=True) as cur:
        if _TIMEOUTS.get(conn) != milliseconds:  # a session setting, sent only when it changes
            cur.execute(f"SET statement_timeout = {milliseconds}".encode())
            _TIMEOUTS[conn] = milliseconds
        if uploads:  # temporary tables need a writable transaction; the role can write nothing else
            cur.execute("BEGIN READ WRITE")
        for name, data in uploads.items():
            table = data if isinstance(data, pa.Table) else data.to_table()
            ident = q.Identifier(name)
            columns = q.SQL(", ").join(
                q.SQL("{} {}").format(q.Identifier(f.name), q.SQL(_arrow_to_pg(f)))
                for f in table.schema
            )
            cur.execute(q.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(ident, columns))
            _copy_arrow(cur, ident, table)
        cur.execute(sql.encode())  # translated SQL: a bytes query needs no further composition
        return _to_arrow(cur)


def _to_arrow(cur: psycopg.Cursor[Any]) -> pa.Table:
    """The cursor's rows as an Arrow table, typed from the result's column types."""
    description = cur.description or []
    rows = cur.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in description]
    arrays = []
    for col, raw in zip(description, columns, strict=True):
        kind = _OID_TO_ARROW.get(col.type_code)
        values = raw
        if any(isinstance(v, Decimal) for v in raw):  # NUMERIC (AVG of integers...): doubles
            values = tuple(None if v is None else float(v) for v in raw)
        arrays.append(pa.array(values, type=kind) if kind else pa.array(values))
    return pa.Table.from_arrays(arrays, names=[c.name for c in description])


def _copy_arrow(cur: psycopg.Cursor[Any], table: q.Composable, data: pa.Table) -> None:
    """Stream ``data`` into ``table`` with COPY ... (FORMAT csv).

    Hand-written rather than psycopg's row-by-row ``write_row``: Arrow's C++ CSV writer formats
    a million rows in a fraction of the time, and PostgreSQL parses CSV as fast as text COPY.
    Empty strings are written quoted and NULLs empty, which COPY's csv format tells apart.
    """
    names = q.SQL(", ").join(q.Identifier(n) for n in data.column_names)
    options = pa_csv.WriteOptions(include_header=False, batch_size=16_384)
    statement = q.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, names)
    with cur.copy(statement) as copy:
        for start in range(0, data.num_rows, _COPY_BATCH):
            buffer = io.BytesIO()
            pa_csv.write_csv(data.slice(start, _COPY_BATCH), buffer, options)
            copy.write(buffer.getbuffer())


def _one(cur: psycopg.Cursor[Any]) -> Any:
    row = cur.fetchone()
    if row is None:  # every caller asks for one row that setup guarantees
        raise QueryFailedError("the catalogue database is missing its sciplat_meta tables")
    return row[0]


def _create_extension(cur: psycopg.Cursor[Any]) -> None:
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
    except psycopg.errors.UndefinedFile as exc:
        raise CatalogueLoadError(
            "pgSphere is not installed on the PostgreSQL server: install its package there "
            "(Debian: apt-get install postgresql-15-pgsphere) and try again"
        ) from exc
    except psycopg.errors.InvalidFunctionDefinition as exc:
        raise CatalogueLoadError(
            f"pgSphere cannot be created ({_message(exc)}): pgSphere 1.2 on PostgreSQL 15.9 or "
            "later needs its obsolete smoc @ operators removed (pgsphere issue #85; "
            "scripts/bootstrap.sh test does it) or pgSphere 1.4"
        ) from exc


def _create_metadata(cur: psycopg.Cursor[Any]) -> None:
    cur.execute(q.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(q.Identifier(SCHEMA)))
    for table in TAP_SCHEMA_TABLES:
        columns = q.SQL(", ").join(
            q.SQL("{} {}").format(q.Identifier(c.name), q.SQL(VOTABLE_TO_PG[c.datatype]))
            for c in table.columns
        )
        name = q.Identifier(SCHEMA, table.name)
        cur.execute(q.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(name, columns))
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_META}")
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {_META}.spatial (table_name text PRIMARY KEY, ra text, "
        "dec text, healpix text, healpix_order integer)"
    )
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {_META}.state (id integer PRIMARY KEY CHECK (id = 1), "
        "generation bigint NOT NULL)"
    )
    cur.execute(f"INSERT INTO {_META}.state VALUES (1, 0) ON CONFLICT DO NOTHING")  # noqa: S608
    cur.execute(q.SQL("SELECT count(*) FROM {}").format(q.Identifier(SCHEMA, "tables")))
    if _one(cur) == 0:
        _write_metadata(cur, Catalogue())  # an empty but queryable TAP_SCHEMA


def _read_metadata(cur: psycopg.Cursor[Any]) -> Catalogue:
    rows: dict[str, list[dict[str, Any]]] = {}
    for table in TAP_SCHEMA_TABLES:
        cur.execute(q.SQL("SELECT * FROM {}").format(q.Identifier(SCHEMA, table.name)))
        names = [c.name for c in cur.description or []]
        rows[table.name] = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    cur.execute(f"SELECT table_name, ra, dec, healpix, healpix_order FROM {_META}.spatial")  # noqa: S608
    spatial = {
        str(name).lower(): SpatialIndex(ra, dec, column, order)
        for name, ra, dec, column, order in cur.fetchall()
    }
    return read_catalogue(rows, spatial)


def _write_metadata(cur: psycopg.Cursor[Any], catalogue: Catalogue) -> None:
    for name, table in build_rows(catalogue).items():
        target = q.Identifier(SCHEMA, name)
        cur.execute(q.SQL("DELETE FROM {}").format(target))
        if table.num_rows:
            _copy_arrow(cur, target, table)
    cur.execute(f"DELETE FROM {_META}.spatial")  # noqa: S608 - constant
    cur.executemany(
        f"INSERT INTO {_META}.spatial VALUES (%s, %s, %s, %s, %s)",  # noqa: S608 - constant
        [
            (t.qualified, t.spatial.ra, t.spatial.dec, t.spatial.column, t.spatial.order)
            for t in catalogue.tables
            if t.spatial is not None
        ],
    )


def _replace(previous: Catalogue, info: TableInfo, schema: SchemaInfo) -> Catalogue:
    schemas = [s for s in previous.schemas if s.name.lower() != schema.name.lower()]
    tables = [t for t in previous.tables if t.qualified.lower() != info.qualified.lower()]
    return Catalogue(schemas=(*schemas, schema), tables=(*tables, info), keys=previous.keys)
