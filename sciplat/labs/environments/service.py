"""Lab environments: what every environment must contain, building and listing them."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import jupyterhub

from sciplat.config import Config, EnvironmentConfig
from sciplat.errors import NotFoundError
from sciplat.jobs import client as jobs_client
from sciplat.labs.builder import server_command
from sciplat.labs.environments import registry, storage
from sciplat.naming import check_name
from sciplat.paths import DataDir


def lab_requirements() -> list[str]:
    """What makes an environment a lab: the single-user server must match the hub; the Dask
    client must match the gateway."""
    return [
        f"jupyterhub=={jupyterhub.__version__}", "jupyterlab>=4.2,<5", "ipykernel>=6",
        # Dask through the platform's gateway (the client must match the gateway's version)
        "dask", "distributed", f"dask-gateway=={dask_gateway_version()}",
    ]  # fmt: skip


def dask_gateway_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("dask-gateway-server")


def lab_modules() -> dict[str, Path]:
    """Single-file modules every environment gets: ``sciplat_jobs``, the jobs service's
    client (standard library only; sciplat itself is not installed in lab environments)."""
    return {"sciplat_jobs": Path(jobs_client.__file__)}


class EnvironmentService:
    def __init__(self, config: Config, data: DataDir) -> None:
        self.config = config
        self.data = data

    def get(self, name: str) -> EnvironmentConfig:
        for env in self.config.environments:
            if env.name == name:
                return env
        raise NotFoundError(
            f"no environment {name!r} in the configuration; add it under `environments:`"
        )

    @property
    def environments(self) -> list[EnvironmentConfig]:
        """The configured environments (the menu offers those installed on disk)."""
        return list(self.config.environments)

    async def update(self) -> bool:
        """Nothing to read again: the configuration lists the local environments."""
        return True

    def available(self, env: EnvironmentConfig) -> bool:
        return os.access(server_command(env)[0], os.X_OK)

    def build(
        self,
        name: str,
        extra: list[str] | None = None,
        kind: str = "release",
        display_name: str = "",
    ) -> EnvironmentConfig:
        """(Re)build environment ``name``. One the configuration names is rebuilt from its
        requirements plus ``extra``; a new name is built under ``<volumes.root>/envs/`` and
        registered (``<data>/environments.yaml``), so it joins the menu after `sciplat reload`.

        Raises:
            InvalidNameError: a new name that is not a valid environment name.
            SciplatError: the build failed (see the log it names).
        """
        try:
            env = self.get(name)
            registered = False
        except NotFoundError:
            check_name(name, "environment")
            env = EnvironmentConfig.model_validate(
                {
                    "name": name,
                    "display_name": display_name or name,
                    "kind": kind,
                    "created": dt.date.today(),
                    "path": self.config.volumes.root / "envs" / name,
                    "requirements": list(extra or []),
                }
            )
            extra, registered = [], True
        storage.build_venv(
            env.path,
            [*lab_requirements(), *env.requirements, *(extra or [])],
            self.data.logs / f"env-{name}.log",
        )
        storage.install_modules(env.path, lab_modules())
        if registered:
            registry.register(self.data.environments, env)
        return env

    def ensure(self, env: EnvironmentConfig) -> bool:
        """Build ``env`` if it is not installed (one that is gets the current lab modules);
        True if it was built."""
        if self.available(env):
            storage.install_modules(env.path, lab_modules())
            return False
        self.build(env.name)
        return True
