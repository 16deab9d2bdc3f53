"""Pure construction of a :class:`LabSpec` from the user, size and environment."""

from __future__ import annotations

import os
from pathlib import Path

from sciplat.config import EnvironmentConfig, SizeConfig
from sciplat.identity.models import User
from sciplat.labs.models import LabLimits, LabSpec

#: The only variables a lab inherits besides the hub's JUPYTERHUB_* ones.
LOCALE = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def server_command(environment: EnvironmentConfig) -> tuple[str, ...]:
    """The single-user server of ``environment``."""
    return (str(environment.path / "bin" / "jupyterhub-singleuser"),)


def user_environment(
    user: User, home: Path, environment: EnvironmentConfig, size: SizeConfig
) -> dict[str, str]:
    """The process environment of everything run as ``user`` (labs and notebook jobs): only
    these variables, nothing else inherited from the hub or a service. The platform's Dask
    client settings (``DASK_GATEWAY__*``, put into the hub's and the jobs service's
    environment by hub/config.py when Dask is on) are passed on."""
    return {
        **{k: v for k, v in os.environ.items() if k.startswith("DASK_GATEWAY__")},
        **LOCALE,
        "PATH": f"{environment.path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "USER": user.name,
        "LOGNAME": user.name,
        "SHELL": "/bin/bash",
        # runtime files (cookie secret, kernel connection files) on the process's private
        # tmpfs, so it still starts when the home is full and the user can make room
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",  # noqa: S108 - the lab's own tmpfs
        "SCIPLAT_ENVIRONMENT": environment.name,
        "SCIPLAT_SIZE": size.name,
    }


def build_spec(
    *,
    user: User,
    server: str,
    home: Path,
    environment: EnvironmentConfig,
    size: SizeConfig,
    hub_env: dict[str, str],
    ip: str,
    port: int,
    log_path: Path,
    isolate: bool,
) -> LabSpec:
    """Everything the backend needs, nothing from the hub's own environment."""
    env = {
        **user_environment(user, home, environment, size),
        **{k: v for k, v in hub_env.items() if k.startswith(("JUPYTERHUB_", "JPY_"))},
    }
    return LabSpec(
        user=user.name,
        server=server,
        uid=user.uid,
        gid=user.gid,
        groups=tuple(user.supplementary_gids),
        home=home,
        environment=environment.name,
        size=size.name,
        command=server_command(environment),
        env=env,
        limits=LabLimits(cpu=size.cpu, memory=size.memory, pids=size.pids),
        ip=ip,
        port=port,
        log_path=log_path,
        isolate=isolate,
    )
