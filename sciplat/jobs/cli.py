"""``sciplat run`` and ``sciplat nbcheck``: notebooks run headless through the jobs service.

Who is calling: ``--token``, else ``$SCIPLAT_TOKEN``, else ``$JUPYTERHUB_API_TOKEN`` (a lab's
own); on the platform's host, root may name ``--user NAME`` and a token for that user's jobs
is made (as `sciplat token` does). Where the service is: ``--url``, else ``$SCIPLAT_JOBS_URL``,
else the hub of the lab this runs in, else the platform in the data directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import yaml

from sciplat.errors import SciplatError
from sciplat.jobs.client import FINISHED, JobsClient, JobsClientError
from sciplat.jobs.storage.git import clone, is_git_url


class JobsCliError(SciplatError):
    """A ``run``/``nbcheck`` failure the caller can fix (the message says how)."""

    code = "jobs_cli"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``run`` and ``nbcheck`` subcommands."""
    run = sub.add_parser("run", help="run a notebook headless as the caller",
                         description="run a notebook headless as the caller")  # fmt: skip
    run.set_defaults(handler=cmd_run)
    run.add_argument("notebook", help="the notebook (a path in your home, or any local file)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("KEY", "VALUE"),
                     help="a parameter (VALUE is read as YAML: 5, 2.5, true, text)")  # fmt: skip
    run.add_argument("--env", default="", help="environment (default: the recommended one)")
    run.add_argument("--force", action="store_true", help="run even if a stored result exists")
    _common(run)
    check = sub.add_parser("nbcheck", help="run every notebook of a directory or git repository",
                           description="run every notebook of a directory or git repository; "
                           "exit status 1 if any fails")  # fmt: skip
    check.set_defaults(handler=cmd_nbcheck)
    check.add_argument("source", metavar="PATH_OR_GIT_URL")
    check.add_argument("--junit", help="write a JUnit XML report to this file")
    check.add_argument("--env", default="", help="environment (default: the recommended one)")
    check.add_argument("--force", action="store_true", help="ignore stored results")
    _common(check)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--size", default="", help="lab size whose limits each job gets")
    p.add_argument("--timeout", type=float, default=None, help="seconds one notebook may run")
    p.add_argument("--url", default="", help="the jobs service (default: found, see --help)")
    p.add_argument("--token", default="", help="API token (default: $SCIPLAT_TOKEN)")
    p.add_argument("--user", default="", help="as root on the platform host: run as this user")


def client_for(args: argparse.Namespace) -> JobsClient:
    """A client for the caller that ``args`` name.

    Raises:
        JobsCliError: no token and no ``--user``, or the service cannot be found.
    """
    token = (
        args.token or os.environ.get("SCIPLAT_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    )
    url = args.url or os.environ.get("SCIPLAT_JOBS_URL", "")
    if not token or (not url and not os.environ.get("JUPYTERHUB_API_URL")):
        from sciplat.factory import Factory  # noqa: PLC0415 - the host's platform, if any
        from sciplat.hub.config import public_url  # noqa: PLC0415

        factory = Factory.from_data_dir(args.data_dir)
        if not url:
            url = public_url(factory) + factory.config.services.jobs.prefix
        if not token:
            token = _user_token(factory, args.user)
    try:
        return JobsClient(url, token)
    except JobsClientError as err:
        raise JobsCliError(err.message) from err


def _user_token(factory: Any, name: str) -> str:
    from sciplat.hub.hubdb import issue_token  # noqa: PLC0415

    if not name:
        raise JobsCliError(
            "who runs it? pass --token (or set $SCIPLAT_TOKEN), or as root --user NAME"
        )
    user = factory.identity.get_user(name)
    url = factory.config.hub.hub_db_url or f"sqlite:///{factory.data.hub_db}"
    scope = factory.config.services.jobs.required_scope
    return str(issue_token(url, user, [scope] if scope else ["inherit"], note="sciplat run"))


def _submit(client: JobsClient, file: Path, **kw: Any) -> dict[str, Any]:
    """By path (the service reads it from the user's storage, inputs beside it), else, for a
    file outside the user's storage, as the document."""
    try:
        return client.submit(str(file.absolute()), **kw)
    except JobsClientError as err:
        if err.code != "bad_request" or not file.is_file():
            raise
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise JobsCliError(f"{file}: not a readable notebook ({exc})") from exc
    return client.submit(notebook=document, **kw)


def cmd_run(args: argparse.Namespace) -> int:
    """Run one notebook and wait; 0 if it succeeded, 1 if it failed.

    Raises:
        JobsCliError: see :func:`client_for`; the service refused the notebook.
    """
    client = client_for(args)
    parameters = {key: yaml.safe_load(value) for key, value in args.parameter}
    started = time.monotonic()
    try:
        job = _submit(client, Path(args.notebook), parameters=parameters,
                      environment=args.env, size=args.size, timeout=args.timeout,
                      force=args.force)  # fmt: skip
        print(f"job {job['id']} submitted", file=sys.stderr)
        if job["status"] not in FINISHED:
            job = client.wait(job["id"], timeout=(args.timeout or 6 * 3600) + 600)
    except JobsClientError as err:
        raise JobsCliError(err.message) from err
    cached = "cached" if job["cached"] else "not cached"
    if job["cached"]:
        origin = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["cached_time"]))
        cached += f" (from job {job['cached_from']} of {origin})"
    print(f"{job['status']}: {cached}, {time.monotonic() - started:.1f} s")
    if job["result"]:
        print(f"executed notebook: {job['result']}")
    if job["status"] != "done":
        print(f"error: {job['error']}", file=sys.stderr)
        return 1
    return 0


@dataclass
class Check:
    name: str
    job: dict[str, Any]
    seconds: float = 0.0


def notebooks_in(root: Path) -> list[Path]:
    """Every notebook under ``root`` except checkpoints and hidden directories, sorted."""
    found = [
        p for p in root.rglob("*.ipynb")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]  # fmt: skip
    return sorted(found)


def cmd_nbcheck(args: argparse.Namespace) -> int:
    """Run every notebook (the service runs them in parallel within the user's ``jobs``
    quota, unchanged ones come from the cache), print a table, write JUnit XML; 1 if any
    failed.

    Raises:
        JobsCliError: no notebooks, an unreachable repository, or the service refused.
    """
    client = client_for(args)
    with tempfile.TemporaryDirectory(prefix="sciplat-nbcheck-") as tmp:
        root = (
            clone(args.source, Path(tmp) / "repo") if is_git_url(args.source) else Path(args.source)
        )
        if not root.is_dir():
            raise JobsCliError(f"{args.source}: not a directory or a git URL")
        files = notebooks_in(root)
        if not files:
            raise JobsCliError(f"{args.source}: no notebooks (*.ipynb) found")
        checks, t0 = [], time.monotonic()
        try:
            for file in files:
                job = _submit(client, file, environment=args.env, size=args.size,
                              timeout=args.timeout, force=args.force)  # fmt: skip
                checks.append(Check(str(file.relative_to(root)), job))
            pending = [c for c in checks if c.job["status"] not in FINISHED]
            while pending:
                time.sleep(0.2)
                for c in pending:
                    c.job = client.status(c.job["id"])
                    c.seconds = time.monotonic() - t0
                pending = [c for c in pending if c.job["status"] not in FINISHED]
        except JobsClientError as err:
            raise JobsCliError(err.message) from err
    for c in checks:
        if c.job["cached"] or not c.job.get("finished") or not c.job.get("started"):
            c.seconds = 0.0 if c.job["cached"] else c.seconds
        else:
            c.seconds = c.job["finished"] - c.job["started"]
    print(table(checks))
    if args.junit:
        Path(args.junit).write_text(junit_xml(checks))
    failed = sum(c.job["status"] != "done" for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


def table(checks: list[Check]) -> str:
    """The pass/fail table: notebook, result, cached, seconds, failing cell and error."""
    width = max(len("notebook"), *(len(c.name) for c in checks))
    lines = [f"{'notebook':<{width}}  {'result':<9} {'cached':<7} {'seconds':>8}  error"]
    for c in checks:
        result = "PASS" if c.job["status"] == "done" else c.job["status"].upper()
        error = c.job.get("error") or ""
        lines.append(f"{c.name:<{width}}  {result:<9} {'yes' if c.job['cached'] else 'no':<7} "
                     f"{c.seconds:>8.1f}  {error}")  # fmt: skip
    return "\n".join(lines)


def junit_xml(checks: list[Check]) -> str:
    """A JUnit XML report (one testcase per notebook) for CI systems."""
    failures = [c for c in checks if c.job["status"] != "done"]
    suite = ET.Element("testsuite", name="nbcheck", tests=str(len(checks)),
                       failures=str(len(failures)), errors="0",
                       time=f"{sum(c.seconds for c in checks):.3f}")  # fmt: skip
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname="nbcheck", name=c.name,
                             time=f"{c.seconds:.3f}")  # fmt: skip
        if c.job["status"] != "done":
            failure = ET.SubElement(case, "failure", message=c.job.get("error") or "failed",
                                    type=c.job["status"])  # fmt: skip
            failure.text = c.job.get("error_source") or c.job.get("error") or ""
        elif c.job["cached"]:
            ET.SubElement(case, "system-out").text = f"cached from job {c.job['cached_from']}"
    return str(ET.tostring(suite, encoding="unicode", xml_declaration=True))
