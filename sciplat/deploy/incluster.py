"""The entry point of the hub, TAP and jobs containers:
``python -m sciplat.deploy.incluster hub|tap|jobs``.

The chart mounts the config document (a ConfigMap) at ``$SCIPLAT_CONFIG_SOURCE``; secrets
(database URLs) arrive as environment variables from Secrets, never in the ConfigMap. This
writes the document with those filled in to the data directory (an emptyDir), validates it
exactly as ``sciplat up`` does, and then execs the hub (JupyterHub with
``sciplat/deploy/jupyterhub_config.py``) or a service (TAP, notebook jobs) listening on the
pod's addresses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sciplat.config import parse_config
from sciplat.errors import ConfigError
from sciplat.paths import DataDir

HUB_CONFIG = Path(__file__).with_name("jupyterhub_config.py")
#: the platform's services that run as Deployments of their own (``python -m sciplat.<name>``)
SERVICES = ("tap", "jobs")

#: environment variable -> (section, key) of the document it fills in
SECRET_KEYS = {
    "SCIPLAT_STATE_URL": ("hub", "state_url"),
    "SCIPLAT_HUB_DB_URL": ("hub", "hub_db_url"),
}


def cluster_document(text: str, env: Mapping[str, str], source: str) -> str:
    """The config document ``text`` with the cluster's settings filled in from ``env``: the
    database URLs (``SECRET_KEYS``) and, unless the document sets it, the hub API URL TAP and
    the jobs service check tokens against (``SCIPLAT_HUB_API_URL``).

    Raises:
        ConfigError: the document (or the result) is not a valid config document.
    """
    parse_config(text, source)  # errors name the operator's own lines first
    data: dict[str, Any] = yaml.safe_load(text) or {}
    for var, (section, key) in SECRET_KEYS.items():
        if env.get(var):
            data.setdefault(section, {})[key] = env[var]
    if env.get("SCIPLAT_HUB_API_URL"):
        for service in SERVICES:
            section = data.setdefault("services", {}).setdefault(service, {})
            section.setdefault("hub_api_url", env["SCIPLAT_HUB_API_URL"])
    result = yaml.safe_dump(data, sort_keys=False)
    parse_config(result, f"{source} (with the cluster's settings)")
    return result


def prepare(source: Path, data_dir: Path, env: Mapping[str, str]) -> DataDir:
    """Write the cluster's config document into ``data_dir`` (mode 0600: it holds secrets).

    Raises:
        ConfigError: ``source`` is unreadable or invalid.
    """
    try:
        text = source.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {source}: {exc.strerror}") from exc
    data = DataDir(data_dir)
    data.ensure()
    target = data.config
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(cluster_document(text, env, str(source)))
    return data


def command(role: str, data: DataDir) -> list[str]:
    """The command line of ``role`` (``hub``, ``tap`` or ``jobs``).

    Raises:
        ConfigError: an unknown role.
    """
    if role == "hub":
        return [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)]
    if role in SERVICES:
        return [sys.executable, "-m", f"sciplat.{role}", "--data-dir", str(data.root),
                "--bind", "0.0.0.0"]  # fmt: skip  # noqa: S104 - a pod's own address
    raise ConfigError(f"unknown role {role!r}: use hub, {' or '.join(SERVICES)}")


def main(argv: list[str] | None = None) -> int:
    """Prepare the data directory and exec the role's process; returns only on errors."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sciplat.deploy.incluster hub|tap|jobs", file=sys.stderr)
        return 2
    source = Path(os.environ.get("SCIPLAT_CONFIG_SOURCE", "/etc/sciplat/sciplat.yaml"))
    data_dir = Path(os.environ.get("SCIPLAT_DATA_DIR", "/var/lib/sciplat"))
    try:
        data = prepare(source, data_dir, os.environ)
        argv_ = command(args[0], data)
    except ConfigError as exc:
        print(f"sciplat: {exc.message}", file=sys.stderr)
        return 1
    env = {**os.environ, "SCIPLAT_DATA_DIR": str(data.root)}
    env.pop("SCIPLAT_CONFIG", None)  # the prepared document wins
    os.execve(argv_[0], argv_, env)  # noqa: S606 - our own interpreter, no shell
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
