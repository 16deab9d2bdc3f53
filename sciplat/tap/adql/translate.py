"""ADQL text → backend SQL, in one pure function (:func:`translate`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlglot import exp

from sciplat.tap.adql.duckdb_sql import DuckDBGeometry
from sciplat.tap.adql.geometry import GeometrySql, rewrite_geometry
from sciplat.tap.adql.parse import parse_adql
from sciplat.tap.adql.postgres_sql import PgSphereGeometry
from sciplat.tap.adql.resolve import Scope, resolve_names
from sciplat.tap.errors import AdqlSyntaxError
from sciplat.tap.models.catalogue import Catalogue, ColumnInfo, TableInfo
from sciplat.tap.models.query import Translation


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

    Raises:
        AdqlSyntaxError: not ADQL.
        AdqlUnsupportedError: ADQL this service does not implement.
        UnknownTableError: a table not in TAP_SCHEMA or not readable by the caller.
        UnknownColumnError: a column none of the query's tables has.
    """
    tree = parse_adql(text)
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
    sql = tree.sql(dialect=dialect, comments=False, copy=False)  # the tree is ours to spend
    return Translation(sql=sql, limit=limit, columns=_output_columns(tree, scope))


def _postgres_functions(tree: exp.Expr) -> None:
    """ADQL functions PostgreSQL has only for NUMERIC: ROUND/TRUNC(x, n) go through NUMERIC,
    LOG10(x) (LOG(10, x) here) becomes PostgreSQL's one-argument LOG, which is base 10."""
    for log in list(tree.find_all(exp.Log)):
        base = log.this
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
