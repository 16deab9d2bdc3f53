"""``sciplat quota show [USER]`` and ``sciplat quota check``: parse, call the quota service,
print. :func:`add_parsers` registers both on the ``sciplat`` command's subparsers."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any, Protocol

from sciplat.config import Config
from sciplat.identity.services.users import IdentityService
from sciplat.paths import DataDir
from sciplat.quotas.models import UNLIMITED, EffectiveQuota, LabUse, QuotaReport, format_amount
from sciplat.quotas.services.quotas import QuotaCheck, QuotaService
from sciplat.quotas.services.usage import labs_by_user


class QuotaWiring(Protocol):
    """What these commands need from :class:`sciplat.factory.Factory`."""

    @property
    def config(self) -> Config: ...
    @property
    def data(self) -> DataDir: ...
    @property
    def identity(self) -> IdentityService: ...
    @property
    def quotas(self) -> QuotaService: ...


def _wiring(args: argparse.Namespace) -> QuotaWiring:
    from sciplat.factory import Factory  # noqa: PLC0415 - the factory imports every service

    return Factory.from_data_dir(args.data_dir)


def running_labs(wiring: QuotaWiring) -> dict[str, list[LabUse]]:
    """The running labs of every user, from the hub's database (hub up or down)."""
    from sciplat.hub.hubdb import lab_states  # noqa: PLC0415 - JupyterHub imports are slow

    hub = wiring.config.hub
    if not hub.hub_db_url and not wiring.data.hub_db.exists():
        return {}
    return labs_by_user(lab_states(hub.hub_db_url or f"sqlite:///{wiring.data.hub_db}"),
                        wiring.config)  # fmt: skip


def render_report(report: QuotaReport) -> str:
    """``quota show`` as text: one line per quota with its limit, source and use."""
    groups = ", ".join(report.groups) or "none"
    enforced = "enforced" if report.storage_enforced else "NOT enforced"
    out = [
        f"quotas of {report.user} (groups: {groups})",
        f"home storage limits: {report.storage_backend}, {enforced}: {report.storage_reason}",
        "",
        f"{'quota':<15}{'limit':<16}{'source':<22}in use",
    ]
    for line in report.lines:
        used = "-" if line.used is None else format_amount(line.key, line.used)
        if line.fraction is not None:
            used += f" ({line.fraction:.0%})"
        if line.detail:
            used = line.detail
        limit = format_amount(line.key, line.limit.value)
        out.append(f"{line.key:<15}{limit:<16}{line.limit.source:<22}{used}")
    out += [f"warning: {w}" for w in report.warnings]
    return "\n".join(out)


def _summary(quota: EffectiveQuota) -> str:
    limited = [
        f"{key} {format_amount(key, limit.value)} ({limit.source})"
        for key, limit in quota.limits.items()
        if limit.value is not None
    ]
    return f"{quota.user:<20}{', '.join(limited) or UNLIMITED}"


def render_check(result: QuotaCheck) -> str:
    """``quota check`` as text: problems, then each user's limits (unlimited keys left out)."""
    out = [f"the quota document is valid ({len(result.effective)} users)"]
    out += [f"warning: {problem}" for problem in result.problems]
    out += [_summary(q) for q in result.effective]
    return "\n".join(out)


def cmd_quota_show(args: argparse.Namespace) -> int:
    """``sciplat quota show [NAME] [--json]``: limits, their sources and current use."""
    wiring = _wiring(args)
    user = wiring.identity.get_user(args.name or getpass.getuser())
    from sciplat.tap.cli import table_storage_used  # noqa: PLC0415 - pyarrow only here

    tables = table_storage_used(wiring.config.services.tap, wiring.data.root, user.name)
    report = wiring.quotas.report(user, running_labs(wiring).get(user.name, []),
                                  {"table_storage": tables})  # fmt: skip
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_report(report))
    return 0


def cmd_quota_check(args: argparse.Namespace) -> int:
    """``sciplat quota check [--json]``: validate the document (loading it does) and print
    every known user's effective limits; entries for unknown users or groups are warnings."""
    wiring = _wiring(args)
    groups = [g.name for g in wiring.identity.list_groups()]
    groups += [g.name for g in wiring.config.groups]
    result = wiring.quotas.check_document(wiring.identity.list_users(), groups)
    if args.json:
        doc: dict[str, Any] = {
            "valid": True,
            "problems": list(result.problems),
            "users": [q.to_dict() for q in result.effective],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(render_check(result))
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``quota show`` and ``quota check`` to the ``sciplat`` command."""
    quota = sub.add_parser("quota", help="quotas: limits and use").add_subparsers(
        dest="sub", required=True
    )
    show = quota.add_parser(
        "show", help="a user's limits and current use", description=cmd_quota_show.__doc__
    )
    show.add_argument("name", nargs="?", help="user (default: the one running the command)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_quota_show)
    check = quota.add_parser(
        "check",
        help="validate the quotas and show everybody's",
        description=cmd_quota_check.__doc__,
    )
    check.add_argument("--json", action="store_true", help="print JSON")
    check.set_defaults(handler=cmd_quota_check)
