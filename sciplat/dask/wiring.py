"""Builds the Dask service's objects from the platform's factory (the jobs service's
pattern): the lab backend, identity, environments, volumes and quota resolver are the
platform's own."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sciplat.config import Config
from sciplat.dask.config import DaskConfig
from sciplat.dask.services.policy import DaskQuotas
from sciplat.identity.services.users import IdentityService
from sciplat.labs.backend import LabBackend
from sciplat.labs.environments.service import EnvironmentService
from sciplat.paths import DataDir
from sciplat.quotas.services.usage import counters_dir
from sciplat.volumes.service import VolumeService
from sciplat.volumes.storage_limits import StorageLimits

if TYPE_CHECKING:
    from sciplat.factory import Factory


@dataclass
class DaskServices:
    """Everything the gateway's backend and authenticator use."""

    config: DaskConfig
    platform: Config
    data: DataDir
    quotas: DaskQuotas
    identity: IdentityService
    environments: EnvironmentService
    labs: LabBackend
    volumes: VolumeService
    storage_limits: StorageLimits
    isolate: bool

    @property
    def usage_file(self) -> Path:
        """Where ``sciplat quota show`` reads the users' Dask use."""
        return usage_file(self.platform)


def usage_file(config: Config) -> Path:
    return counters_dir(config.volumes) / "dask.json"


def build_dask(factory: Factory) -> DaskServices:
    """Wire the Dask objects onto the platform's own."""
    identity = factory.identity
    config_path = Path(os.environ.get("SCIPLAT_CONFIG") or factory.data.config)
    return DaskServices(
        config=factory.config.services.dask,
        platform=factory.config,
        data=factory.data,
        quotas=DaskQuotas(
            factory.quota_resolver, config_path, lambda name: identity.get_user(name).group_names
        ),
        identity=identity,
        environments=factory.environments,
        labs=factory.lab_backend,
        volumes=factory.volumes,
        storage_limits=factory.storage_limits,
        isolate=factory.as_root,
    )
