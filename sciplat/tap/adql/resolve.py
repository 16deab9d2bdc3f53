"""Names in an ADQL tree → the catalogue's tables and columns.

Only tables listed in TAP_SCHEMA (and visible to the caller) can be named; everything else
(information_schema, pg_catalog, duckdb_* tables, files) is "unknown". Columns must belong to one
of the query's tables, subqueries or aliases; a wrong name is reported with close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp

from sciplat.tap.errors import UnknownColumnError, UnknownTableError
from sciplat.tap.models.catalogue import Catalogue, ColumnInfo, SpatialIndex, TableInfo


@dataclass
class Scope:
    """What a query's names refer to, after :func:`resolve_names`."""

    tables: dict[str, TableInfo] = field(default_factory=dict)  # alias (lower) → table
    derived: dict[str, set[str] | None] = field(default_factory=dict)  # alias → names (None: *)
    aliases: set[str] = field(default_factory=set)
    upload_schema: str = "temp.main"  # where TAP_UPLOAD tables are, for rewriting qualifiers
    #: tables the backend gets as uploads (MyDB): lower-case schema.name → the alias the
    #: query's SQL gives them, for rewriting columns written schema.table.column
    relocated: dict[str, str] = field(default_factory=dict)

    def spatial(self, ra: exp.Expr, dec: exp.Expr) -> tuple[exp.Column, SpatialIndex] | None:
        """The HEALPix column sorting the table whose ra/dec columns these are, if any."""
        if not isinstance(ra, exp.Column) or not isinstance(dec, exp.Column):
            return None
        if ra.table.lower() != dec.table.lower():
            return None
        if ra.table:
            candidates = [(ra.table, self.tables.get(ra.table.lower()))]
        else:
            candidates = [(a, t) for a, t in self.tables.items() if "." not in a]
        hits = [
            (alias, t.spatial)
            for alias, t in candidates
            if t is not None
            and t.spatial is not None
            and t.spatial.ra.lower() == ra.name.lower()
            and t.spatial.dec.lower() == dec.name.lower()
        ]
        if len(hits) != 1:
            return None
        alias, spatial = hits[0]
        return exp.column(spatial.column, table=exp.to_identifier(alias, quoted=True)), spatial

    def column_info(self, name: str) -> ColumnInfo | None:
        """Metadata of a column of one of the query's tables, by name."""
        for table in self.tables.values():
            col = table.column(name)
            if col is not None:
                return col
        return None


def resolve_names(
    tree: exp.Query,
    catalogue: Catalogue,
    may_read: Callable[[TableInfo], bool],
    uploads: Mapping[str, TableInfo] | None = None,
    upload_schema: str = "temp.main",
    relocate: Callable[[TableInfo], str | None] | None = None,
) -> Scope:
    """Check and canonicalize every table and column name of ``tree`` (in place).

    ``TAP_UPLOAD.<name>`` names one of this query's ``uploads`` (by lower-case name); it is
    rewritten to ``upload_schema`` (dot-separated parts), where the backend puts it. A readable
    table for which ``relocate`` gives a name (a user's MyDB table, a per-caller TAP_SCHEMA)
    is rewritten to that name under ``upload_schema`` the same way.

    Raises:
        UnknownTableError: a table not in TAP_SCHEMA, or one the caller may not read.
        UnknownColumnError: a column no table, subquery or alias of the query has.
    """
    scope = Scope(upload_schema=upload_schema)
    ctes = {cte.alias.lower(): cte for cte in tree.find_all(exp.CTE)}
    for sub in [*tree.find_all(exp.Subquery), *ctes.values()]:
        if sub.alias:
            scope.derived[sub.alias.lower()] = _output_names(sub.this)
    for table in tree.find_all(exp.Table):
        if not table.db and table.name.lower() in ctes:
            if table.alias:
                scope.derived[table.alias.lower()] = scope.derived[table.name.lower()]
            continue
        if table.db.lower() == "tap_upload":
            _resolve_upload(table, uploads or {}, upload_schema, scope)
            continue
        info = catalogue.table(table.db or None, table.name)
        if info is None or not may_read(info):
            raise _unknown_table(table, catalogue, may_read)
        alias = table.alias or info.name
        table.set("this", exp.to_identifier(info.name, quoted=True))
        table.set("db", exp.to_identifier(info.schema, quoted=True))
        scope.tables[alias.lower()] = info
        if not table.alias:
            scope.tables.setdefault(info.qualified.lower(), info)
        moved = relocate(info) if relocate is not None else None
        if moved is not None:  # keep the name columns are qualified with as an alias
            scope.relocated[info.qualified.lower()] = alias
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
            _qualify_upload(table, info, upload_schema, moved)
    scope.aliases = {a.alias.lower() for a in tree.find_all(exp.Alias)}
    for column in tree.find_all(exp.Column):
        _resolve_column(column, scope)
    return scope


def _resolve_upload(
    table: exp.Table, uploads: Mapping[str, TableInfo], upload_schema: str, scope: Scope
) -> None:
    info = uploads.get(table.name.lower())
    if info is None:
        have = ", ".join(f"TAP_UPLOAD.{n}" for n in sorted(uploads)) or "none"
        raise UnknownTableError(
            f"table 'TAP_UPLOAD.{table.name}' was not uploaded with this query (uploaded: "
            f"{have}); send it with UPLOAD={table.name.lower()},param:<part> and the file"
        )
    _qualify_upload(table, info, upload_schema)
    scope.tables[(table.alias or info.name).lower()] = info
    if not table.alias:
        scope.tables.setdefault(f"tap_upload.{info.name}".lower(), info)


def _qualify_upload(
    node: exp.Column | exp.Table, info: TableInfo, upload_schema: str, moved: str | None = None
) -> None:
    """Point a TAP_UPLOAD table (or one ``moved`` to that name), or a column written
    TAP_UPLOAD.t.c (schema.t.c), at ``upload_schema``."""
    if (info.schema != "TAP_UPLOAD" and moved is None) or (
        isinstance(node, exp.Column) and not node.db
    ):
        return  # a catalogue table, or t.c with t an alias or the bare name: nothing moves
    parts = upload_schema.split(".")
    node.set("db", exp.to_identifier(parts[-1], quoted=True))
    node.set("table" if isinstance(node, exp.Column) else "this",
             exp.to_identifier(moved or info.name, quoted=True))  # fmt: skip
    if len(parts) > 1:
        node.set("catalog", exp.to_identifier(parts[0], quoted=True))


def _qualify_column(column: exp.Column, info: TableInfo, scope: Scope) -> None:
    """Rewrite TAP_UPLOAD.t.c for upload_schema, and schema.t.c of a relocated (MyDB) table
    to the alias its table was given."""
    if column.db and info.qualified.lower() in scope.relocated:
        column.set("db", None)
        column.set("table", exp.to_identifier(scope.relocated[info.qualified.lower()], quoted=True))
    else:
        _qualify_upload(column, info, scope.upload_schema)


def _output_names(query: exp.Expr) -> set[str] | None:
    """Lower-case output names of a subquery, or None when it selects ``*``."""
    selects = getattr(query, "selects", [])
    if any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star) for s in selects):
        return None
    return {s.alias_or_name.lower() for s in selects}


def _resolve_column(column: exp.Column, scope: Scope) -> None:
    name = column.name
    qualifier = column.table.lower()
    if column.db:
        qualifier = f"{column.db}.{column.table}".lower()
    if column.args.get("catalog"):
        raise UnknownColumnError(f"{column.sql()}: write table.column or schema.table.column")
    if qualifier:
        if qualifier in scope.tables:
            info = scope.tables[qualifier]
            if column.is_star:
                return
            found = info.column(name)
            if found is None:
                raise _unknown_column(name, [c.name for c in info.columns], info.qualified)
            column.set("this", exp.to_identifier(found.name, quoted=True))
            _qualify_column(column, info, scope)
            return
        if qualifier in scope.derived:
            names = scope.derived[qualifier]
            if names is not None and name.lower() not in names and not column.is_star:
                raise _unknown_column(name, sorted(names), qualifier)
            return
        known = sorted({*scope.tables, *scope.derived})
        close = difflib.get_close_matches(qualifier, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownTableError(
            f"{column.sql()}: the query has no table or alias called {column.table}{hint}"
        )
    for info in scope.tables.values():
        found = info.column(name)
        if found is not None:
            column.set("this", exp.to_identifier(found.name, quoted=True))
            return
    derived = {n for names in scope.derived.values() if names for n in names}
    if name.lower() in scope.aliases or name.lower() in derived:
        return
    if any(names is None for names in scope.derived.values()):
        return  # a SELECT * subquery: the database checks the name
    candidates = sorted({c.name for t in scope.tables.values() for c in t.columns} | derived)
    where = ", ".join(sorted({t.qualified for t in scope.tables.values()})) or "the query"
    raise _unknown_column(name, candidates, where)


def _unknown_column(name: str, candidates: list[str], where: str) -> UnknownColumnError:
    lowered = {c.lower(): c for c in candidates}
    close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3)]
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(candidates[:40]) + (", ..." if len(candidates) > 40 else "")
    return UnknownColumnError(
        f"column '{name}' is not in {where}.{hint} Its columns are: {listing}"
    )


def _unknown_table(
    table: exp.Table, catalogue: Catalogue, may_read: Callable[[TableInfo], bool]
) -> UnknownTableError:
    written = f"{table.db}.{table.name}" if table.db else table.name
    visible = [t.qualified for t in catalogue.tables if may_read(t)]
    lowered = {n.lower(): n for n in visible}
    close = difflib.get_close_matches(written.lower(), list(lowered), n=3)
    if not close and not table.db:
        close = [n for n in lowered if n.endswith("." + written.lower())]
    hint = f" Did you mean {', '.join(lowered[c] for c in close)}?" if close else ""
    return UnknownTableError(
        f"table '{written}' is not available.{hint} TAP_SCHEMA.tables lists the tables you "
        "can query."
    )
