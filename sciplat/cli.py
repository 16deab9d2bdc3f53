"""The ``sciplat`` command. Each subcommand parses, calls one service, prints the result."""

from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sciplat.errors import SciplatError
from sciplat.factory import Factory
from sciplat.paths import DataDir, default_data_dir

Handler = Callable[[argparse.Namespace], int]


def _factory(args: argparse.Namespace) -> Factory:
    return Factory.from_data_dir(args.data_dir)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise SciplatError("the passwords differ")
    else:
        raise SciplatError("no terminal to ask for a password: pass it with --password-stdin")
    if len(password) < 8:
        raise SciplatError("a password needs at least 8 characters")
    return password


# -- up / down / status ---------------------------------------------------------------------------
def first_run(data: DataDir) -> str | None:
    """Write the demo config and an admin with a random password; returns the password."""
    from sciplat.demo import demo_config  # noqa: PLC0415

    data.ensure()
    data.config.write_text(demo_config(data.root))
    factory = Factory.from_data_dir(data.root)
    password = secrets.token_urlsafe(12)
    factory.identity.add_user("admin", admin=True, password=password)
    secret = data.root / "initial-admin-password"
    secret.touch(mode=0o600)
    secret.write_text(password + "\n")
    return password


def cmd_up(args: argparse.Namespace) -> int:
    from sciplat.supervisor import Supervisor  # noqa: PLC0415

    data = DataDir(Path(args.data_dir) if args.data_dir else default_data_dir())
    os.environ["SCIPLAT_DATA_DIR"] = str(data.root)
    if args.config:
        os.environ["SCIPLAT_CONFIG"] = str(Path(args.config).absolute())
    if args.bind:
        os.environ["SCIPLAT_BIND"] = args.bind
    if args.port:
        os.environ["SCIPLAT_PORT"] = str(args.port)
    if not args.config and not data.config.exists():
        print(f"sciplat: first start: writing a demo configuration to {data.config}")
        first_run(data)
    factory = Factory.from_data_dir(data.root)
    data.ensure()
    factory.volumes.check_root()
    factory.identity.sync_config_groups()
    warning = factory.isolation_warning()
    if warning:
        print(f"sciplat: WARNING: {warning}", file=sys.stderr)
    print(f"sciplat: storage limits: {factory.storage_limits.describe()}")
    env = factory.config.default_environment()
    if env is not None and not factory.environments.available(env):
        print(f"sciplat: building the lab environment {env.name!r} at {env.path} "
              "(first start only; a minute or two)...", flush=True)  # fmt: skip
    if env is not None:
        try:
            factory.environments.ensure(env)  # builds it, or brings its lab modules up to date
        except SciplatError as err:
            if not factory.environments.available(env):
                raise
            print(f"sciplat: WARNING: {err.message}", file=sys.stderr)

    def ready() -> None:
        from sciplat.hub.config import public_url  # noqa: PLC0415

        url = public_url(factory)
        secret = data.root / "initial-admin-password"
        print("\n" + "=" * 72)
        print(f"  sciplat is up: open {url}/hub/login")
        if secret.exists():
            print(f"  user: admin   password: {secret.read_text().strip()}")
            print(f"  (the initial password is kept in {secret}; change it with")
            print("   `sciplat user passwd admin` and delete that file)")
        print("  Ctrl-C stops the hub and proxy; labs keep running until `sciplat down`.")
        print("=" * 72 + "\n", flush=True)

    return Supervisor(factory).run(on_ready=ready)


def _hub_db_url(factory: Factory) -> str | None:
    if factory.config.hub.hub_db_url:
        return factory.config.hub.hub_db_url
    return f"sqlite:///{factory.data.hub_db}" if factory.data.hub_db.exists() else None


def cmd_down(args: argparse.Namespace) -> int:
    from sciplat.hub.hubdb import lab_states  # noqa: PLC0415
    from sciplat.supervisor import stop_dask, stop_process  # noqa: PLC0415

    factory = _factory(args)
    for name in ("supervisor", "hub", "proxy"):
        if stop_process(factory.data.pid_file(name)):
            print(f"stopped {name}")
    url = _hub_db_url(factory)
    for user, server, state, _ in lab_states(url) if url else []:
        asyncio.run(factory.lab_backend.stop(state))
        print(f"stopped the lab of {user}{'/' + server if server else ''}")
    # the resident parents that fork labs (a supervisor that crashed left them running)
    stopped = factory.prefork.stop_all()
    if stopped:
        print(f"stopped {stopped} pre-forked lab server{'s' if stopped > 1 else ''}")
    # Dask schedulers and workers (a supervisor that crashed left them running)
    stop_dask(factory)
    # notebook jobs still running (their service is gone; its recovery would stop them at
    # its next start, which a platform being taken down does not get)
    from sciplat.jobs.storage.shutdown import stop_running_jobs  # noqa: PLC0415

    jobs = stop_running_jobs(factory.data.jobs_db, factory.lab_backend)
    if jobs:
        print(f"stopped {jobs} running notebook job{'s' if jobs > 1 else ''}")
    # home and group images are mounted while the platform runs; with every lab gone,
    # release them
    for person in factory.identity.list_users():
        try:
            factory.storage_limits.release(person)
        except SciplatError as err:
            print(f"sciplat: could not release the home of {person.name}: {err.message}",
                  file=sys.stderr)  # fmt: skip
    for group in factory.identity.list_groups():
        try:
            factory.storage_limits.release_group(group)
        except SciplatError as err:
            print(f"sciplat: could not release the group directory of {group.name}: "
                  f"{err.message}", file=sys.stderr)  # fmt: skip
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from sciplat.supervisor import pid_alive  # noqa: PLC0415

    factory = _factory(args)  # refuses an invalid document before anything is touched
    pid = pid_alive(factory.data.pid_file("supervisor"))
    if pid is None:
        raise SciplatError("sciplat is not running: the new configuration applies at `sciplat up`")
    marker = factory.data.reload_marker
    marker.unlink(missing_ok=True)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text().strip():
            result = marker.read_text().strip()
            if result != "ok":
                raise SciplatError(f"reload failed: {result.removeprefix('error: ')}")
            print("reloaded: the hub and its services run with the new configuration; "
                  "labs kept running")  # fmt: skip
            return 0
        time.sleep(0.1)
    raise SciplatError("the platform did not confirm the reload within 120 s; see logs/hub.log")


def cmd_status(args: argparse.Namespace) -> int:
    from sciplat.hub.hubdb import lab_states  # noqa: PLC0415
    from sciplat.labs.services.status import human_age, lab_rows  # noqa: PLC0415
    from sciplat.supervisor import pid_alive  # noqa: PLC0415

    factory = _factory(args)
    for name in ("supervisor", "hub", "proxy"):
        pid = pid_alive(factory.data.pid_file(name))
        print(f"{name:<11} {'running, pid ' + str(pid) if pid else 'stopped'}")
    warning = factory.isolation_warning()
    if warning:
        print(f"WARNING: {warning}")
    url = _hub_db_url(factory)
    labs = [
        (user, server, state, asyncio.run(factory.lab_backend.poll(state)) is None)
        for user, server, state, _ in (lab_states(url) if url else [])
    ]
    rows = lab_rows(factory.config, factory.lab_backend, labs)
    users = factory.identity.list_users()
    print(f"\n{len(users)} users, {sum(r.running for r in rows)} running labs\n")
    header = (
        f"{'user':<18}{'server':<8}{'env':<14}{'size':<8}{'age':>6}{'pid':>8}"
        f"{'mem MiB':>9}{'/limit':>8}{'cpu s':>8}{'/cores':>7}{'procs':>6}{'oom':>5}"
    )
    print(header)  # fmt: skip
    for r in rows:
        print(f"{r.user:<18}{r.server or '-':<8}{r.environment:<14}{r.size:<8}"
              f"{human_age(r.age_seconds):>6}{r.pid if r.running else 'gone':>8}"
              f"{r.memory / 2**20:>9.0f}{r.memory_limit / 2**20:>8.0f}{r.cpu_seconds:>8.1f}"
              f"{r.cpu_limit:>7g}{r.pids:>6}{r.oom_kills:>5}")  # fmt: skip
    return 0


# -- users, groups, tokens ------------------------------------------------------------
def cmd_user_add(args: argparse.Namespace) -> int:
    factory = _factory(args)
    password = _read_password(args) if (args.password_stdin or sys.stdin.isatty()) else None
    user = factory.identity.add_user(args.name, args.group, args.admin, password)
    factory.volumes.provision(user)
    print(f"added {user.name} (uid {user.uid}, groups {', '.join(user.group_names) or '-'})")
    return 0


def cmd_user_passwd(args: argparse.Namespace) -> int:
    _factory(args).identity.set_password(args.name, _read_password(args))
    print(f"password of {args.name} changed")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    users = _factory(args).identity.list_users()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": u.name,
                        "uid": u.uid,
                        "gid": u.gid,
                        "admin": u.admin,
                        "provider": u.provider,
                        "groups": u.group_names,
                    }
                    for u in users
                ]
            )
        )
        return 0  # fmt: skip
    print(f"{'user':<20}{'uid':>8}  {'admin':<6}{'provider':<10}groups")
    for u in users:
        print(f"{u.name:<20}{u.uid:>8}  {'yes' if u.admin else '':<6}{u.provider:<10}"
              f"{', '.join(u.group_names)}")  # fmt: skip
    return 0


def cmd_group_add(args: argparse.Namespace) -> int:
    factory = _factory(args)
    group = factory.identity.add_group(args.name, args.description)
    factory.volumes.provision_group(group)
    print(f"added group {group.name} (gid {group.gid})")
    return 0


def cmd_group_list(args: argparse.Namespace) -> int:
    for g in _factory(args).identity.list_groups():
        print(f"{g.name:<20}{g.gid:>8}  {g.description}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from sciplat.hub.hubdb import ADMIN_SCOPES, DEFAULT_SCOPES, issue_token  # noqa: PLC0415

    factory = _factory(args)
    user = factory.identity.get_user(args.name)
    if args.admin and not user.admin:
        raise SciplatError(
            f"{user.name} is not an admin: only admins get admin tokens "
            f"(make one with `sciplat user add NAME --admin`)"
        )
    scopes = list(args.scope) or (ADMIN_SCOPES if args.admin else DEFAULT_SCOPES)
    url = factory.config.hub.hub_db_url or f"sqlite:///{factory.data.hub_db}"
    factory.data.ensure()
    print(issue_token(url, user, scopes, note="sciplat token"))
    return 0


# -- environments, config ------------------------------------------------------------
def cmd_env_list(args: argparse.Namespace) -> int:
    factory = _factory(args)
    for env in factory.config.environments:
        state = "ready" if factory.environments.available(env) else "NOT INSTALLED"
        mark = "*" if env is factory.config.default_environment() else " "
        print(f"{mark} {env.name:<16}{env.kind:<13}{env.created or '':<12}{state:<15}{env.path}")
    return 0


def cmd_env_build(args: argparse.Namespace) -> int:
    factory = _factory(args)
    extra = []
    if args.from_file:
        extra = [ln.strip() for ln in Path(args.from_file).read_text().splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]  # fmt: skip
    known = any(e.name == args.name for e in factory.config.environments)
    env = factory.environments.build(args.name, extra, args.kind, args.display_name)
    print(f"built {env.name} at {env.path}")
    if not known:
        print(f"registered {env.name} ({env.kind}) in {factory.data.environments}; "
              "`sciplat reload` offers it in the running platform")  # fmt: skip
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    factory = _factory(args)
    print(f"{factory.data.config}: valid ({len(factory.config.sizes)} sizes, "
          f"{len(factory.config.environments)} environments)")  # fmt: skip
    return 0


def cmd_catalog_load(args: argparse.Namespace) -> int:
    from sciplat.tap.cli import catalog_load  # noqa: PLC0415

    factory = _factory(args)
    print(catalog_load(factory.tap, args.file, args.table, args.ra, args.dec, args.description))
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    from sciplat.reference import config_reference  # noqa: PLC0415

    print(config_reference(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciplat", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (default: $SCIPLAT_DATA_DIR or ./data)")
    sub = parser.add_subparsers(dest="command", required=True)

    add = functools.partial(_add, sub)
    up = add("up", cmd_up, "run the platform in the foreground")
    up.add_argument("--config", help="configuration document (default: DATA_DIR/sciplat.yaml)")
    up.add_argument("--bind", help="address the proxy listens on")
    up.add_argument("--port", type=int, help="port the proxy listens on")
    add("down", cmd_down, "stop the platform and every lab")
    add("status", cmd_status, "show the platform's processes and labs")
    add("reload", cmd_reload, "apply a changed sciplat.yaml without stopping labs")

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="sub", required=True)
    p = _add(user, "add", cmd_user_add, "add a local user")
    p.add_argument("name")
    p.add_argument("--group", action="append", default=[], help="group to join (repeatable)")
    p.add_argument("--admin", action="store_true")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = _add(user, "passwd", cmd_user_passwd, "set a user's password")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    p = _add(user, "list", cmd_user_list, "list users")
    p.add_argument("--json", action="store_true")

    group = sub.add_parser("group", help="manage groups").add_subparsers(dest="sub", required=True)
    p = _add(group, "add", cmd_group_add, "add a group")
    p.add_argument("name")
    p.add_argument("--description", default="")
    _add(group, "list", cmd_group_list, "list groups")

    p = add("token", cmd_token, "print a new API token for a user")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="with admin scopes (admins only)")
    p.add_argument("--scope", action="append", default=[], help="JupyterHub scope (repeatable)")
    _add_data_commands(sub)
    return parser


def _add(
    parent: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    helptext: str,
) -> argparse.ArgumentParser:
    p = parent.add_parser(name, help=helptext, description=helptext)
    p.set_defaults(handler=handler)
    return p


def _add_data_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Environments, configuration, catalogues and quotas."""
    env = sub.add_parser("env", help="lab environments").add_subparsers(dest="sub", required=True)
    _add(env, "list", cmd_env_list, "list environments")
    p = _add(env, "build", cmd_env_build, "build an environment (a new name is registered)")
    p.add_argument("name")
    p.add_argument("--from", dest="from_file", help="requirements.txt with extra packages")
    p.add_argument("--kind", default="release",
                   choices=["release", "weekly", "daily", "experimental"],
                   help="release channel of a new environment")  # fmt: skip
    p.add_argument("--display-name", default="", help="name shown in the menu")

    config = sub.add_parser("config", help="the configuration document").add_subparsers(
        dest="sub", required=True
    )
    _add(config, "check", cmd_config_check, "validate the configuration")
    _add(config, "reference", cmd_config_reference, "print the configuration reference (Markdown)")

    catalog = sub.add_parser("catalog", help="catalogues served by TAP").add_subparsers(
        dest="sub", required=True
    )
    p = _add(catalog, "load", cmd_catalog_load, "load a FITS, VOTable, CSV or Parquet table")
    p.add_argument("file", help="the file, or `hipparcos` for the bundled demo catalogue")
    p.add_argument("--table", required=True, help="schema.name")
    p.add_argument("--ra", help="right ascension column (default: guessed from UCDs and names)")
    p.add_argument("--dec", help="declination column")
    p.add_argument("--description", default="", help="what the table holds")

    from sciplat.quotas import cli as quota_cli  # noqa: PLC0415

    quota_cli.add_parsers(sub)
    from sciplat.jobs import cli as jobs_cli  # noqa: PLC0415

    jobs_cli.add_parsers(sub)
    from sciplat.tap import cli as tap_cli  # noqa: PLC0415

    tap_cli.add_table_parsers(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except SciplatError as err:
        print(f"sciplat: error: {err.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
