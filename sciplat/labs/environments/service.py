"""Lab environments: what every environment must contain, building and listing them."""

from __future__ import annotations

import os

import jupyterhub

from sciplat.config import Config, EnvironmentConfig
from sciplat.errors import NotFoundError
from sciplat.labs.builder import server_command
from sciplat.labs.environments import storage
from sciplat.paths import DataDir


def lab_requirements() -> list[str]:
    """What makes an environment a lab: the single-user server must match the hub."""
    return [f"jupyterhub=={jupyterhub.__version__}", "jupyterlab>=4.2,<5", "ipykernel>=6"]


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

    def available(self, env: EnvironmentConfig) -> bool:
        return os.access(server_command(env)[0], os.X_OK)

    def build(self, name: str, extra: list[str] | None = None) -> EnvironmentConfig:
        """(Re)build environment ``name`` from its configured requirements plus ``extra``.

        Raises:
            NotFoundError: not in the configuration.
            SciplatError: the build failed (see the log it names).
        """
        env = self.get(name)
        storage.build_venv(
            env.path,
            [*lab_requirements(), *env.requirements, *(extra or [])],
            self.data.logs / f"env-{name}.log",
        )
        return env

    def ensure(self, env: EnvironmentConfig) -> bool:
        """Build ``env`` if it is not installed; True if it was built."""
        if self.available(env):
            return False
        self.build(env.name)
        return True
