"""ADQL text → backend SQL, in one pure function (:func:`translate`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp

from sciplat.tap.adql import cache, literals
from sciplat.tap.adql.duckdb_sql import DuckDBGeometry
from sciplat.tap.adql.geometry import GeometrySql, rewrite_geometry
from sciplat.tap.adql.parse import parse_adql
from sciplat.tap.adql.postgres_sql import PgSphereGeometry
from sciplat.tap.adql.resolve import Scope, resolve_names
from sciplat.tap.errors import AdqlSyntaxError
from sciplat.tap.models.catalogue import Catalogue, ColumnInfo, TableInfo
from sciplat.tap.models.query import Translation

#: Translations by query shape (see :mod:`sciplat.tap.adql.cache`), for every caller
CACHE = cache.Cache()


def translate(
    text: str,
    catalogue: Catalogue,
    may_read: Callable[[TableInfo], bool] = lambda _table: True,
    maxrec: int | None = None,
    uploads: Mapping[str, TableInfo] | None = None,
    upload_schema: str = "temp.main",
    dialect: str = "duckdb",
    relocate: Callable[[TableInfo], str | None] | None = None,
) -> Translation:
    """Translate one ADQL query to the SQL of ``dialect`` (a backend's: duckdb or postgres).

    ``maxrec`` caps the rows: the SQL asks for ``maxrec + 1`` so that the caller can tell an
    overflow from an exact fit. ``uploads`` are the query's TAP_UPLOAD tables, found by the
    backend under ``upload_schema`` (see :class:`CatalogueBackend`), and so are the tables for
    which ``relocate`` gives a name there (MyDB tables, see :func:`resolve_names`).

    A query of a shape seen before (same text but for its numbers) reuses that translation
    (:data:`CACHE`); queries with uploads or relocated tables are always translated afresh.

    Raises:
        AdqlSyntaxError: not ADQL.
        AdqlUnsupportedError: ADQL this service does not implement.
        UnknownTableError: a table not in TAP_SCHEMA or not readable by the caller.
        UnknownColumnError: a column none of the query's tables has.
    """
    query = cache.lift(text) if not uploads and relocate is None else None
    key = (query.shape, dialect, maxrec, upload_schema) if query is not None else None
    if query is not None and key is not None:
        found = CACHE.get(key, query.numbers, catalogue, may_read)
        if found is not None:
            return Translation(found.fill(query.numbers, dialect), found.limit, dict(found.columns))
    pinned, token = literals.recording()
    try:
        translation, made = _translate(
            text, query, catalogue, may_read, maxrec, uploads, upload_schema, dialect, relocate
        )
    finally:
        literals.stop(token)
    # stored only if it gives back exactly what was just translated
    if made is not None and query is not None and key is not None \
            and made.fill(query.numbers, dialect) == translation.sql:  # fmt: skip
        CACHE.put(key, query.numbers, pinned, made)
    return translation


def _translate(
    text: str,
    query: cache.Query | None,
    catalogue: Catalogue,
    may_read: Callable[[TableInfo], bool],
    maxrec: int | None,
    uploads: Mapping[str, TableInfo] | None,
    upload_schema: str,
    dialect: str,
    relocate: Callable[[TableInfo], str | None] | None,
) -> tuple[Translation, cache.Template | None]:
    """The translation, and its template when ``query`` (its numbers) can be cached."""
    tree = parse_adql(text)
    cacheable = query is not None and cache.tag(tree, query)
    scope = resolve_names(tree, catalogue, may_read, uploads, upload_schema, relocate)
    geometry: GeometrySql = (
        PgSphereGeometry() if dialect == "postgres" else DuckDBGeometry(scope.spatial)
    )
    rewrite_geometry(tree, geometry)
    if dialect == "postgres":
        _postgres_functions(tree)
    for log in list(tree.find_all(exp.Log)):
        if log.expression is None:  # ADQL LOG is the natural logarithm; DuckDB's is base 10
            log.replace(exp.Ln(this=log.this))
    for ordered in tree.find_all(exp.Ordered):
        ordered.set("nulls_first", False)  # no NULLS FIRST/LAST clause: the backend decides
    limit = _apply_limit(tree, maxrec)
    columns = _output_columns(tree, scope)
    made = None
    if cacheable:
        tables = tuple({id(t): t for t in scope.tables.values()}.values())
        made = cache.template(tree, dialect, limit, columns, tables, catalogue)
    sql = tree.sql(dialect=dialect, comments=False, copy=False)  # the tree is ours to spend
    return Translation(sql=sql, limit=limit, columns=dict(columns)), made


def _postgres_functions(tree: exp.Expr) -> None:
    """ADQL functions PostgreSQL has only for NUMERIC: ROUND/TRUNC(x, n) go through NUMERIC,
    LOG10(x) (LOG(10, x) here) becomes PostgreSQL's one-argument LOG, which is base 10."""
    for log in list(tree.find_all(exp.Log)):
        base = log.this
        literals.pin(base)
        if log.expression is not None and isinstance(base, exp.Literal) and base.this == "10":
            log.replace(exp.Anonymous(this="LOG", expressions=[log.expression]))
    for call in list(tree.find_all(exp.Round, exp.Trunc)):
        if call.args.get("decimals") is not None:
            call.set("this", exp.cast(call.this, "DECIMAL"))
            call.replace(exp.cast(call.copy(), "DOUBLE"))


def _apply_limit(tree: exp.Query, maxrec: int | None) -> int | None:
    node = tree.args.get("limit")
    top: int | None = None
    if node is not None:
        value = node.expression
        literals.pin(value)
        if not (isinstance(value, exp.Literal) and value.is_int):
            raise AdqlSyntaxError("TOP takes a whole number: SELECT TOP 100 ...")
        top = int(value.this)
    if maxrec is None or (top is not None and top <= maxrec):
        return top
    tree.set("limit", exp.Limit(expression=exp.Literal.number(maxrec + 1)))
    return maxrec + 1


def _output_columns(tree: exp.Query, scope: Scope) -> dict[str, ColumnInfo]:
    """Metadata for result columns that are plain table columns, by output name (lower)."""
    query: exp.Expr = tree
    while isinstance(query, exp.SetOperation):
        query = query.this
    found: dict[str, ColumnInfo] = {}
    for item in getattr(query, "selects", []):
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(item, exp.Star) or (isinstance(item, exp.Column) and item.is_star):
            qualifier = item.table.lower() if isinstance(item, exp.Column) else ""
            tables = [scope.tables[qualifier]] if qualifier in scope.tables else []
            for table in tables or scope.tables.values():
                for col in table.columns:
                    found.setdefault(col.name.lower(), col)
        elif isinstance(inner, exp.Column):
            owner = scope.tables.get(inner.table.lower()) if inner.table else None
            info = owner.column(inner.name) if owner else scope.column_info(inner.name)
            if info is not None:
                found[item.alias_or_name.lower()] = info
    return found
