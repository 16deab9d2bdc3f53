"""The one wiring point: builds every long-lived object from the config and data directory.

Tests build the same graph with their own data directory and config.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from sciplat.config import Config, load_config
from sciplat.db import Database
from sciplat.errors import ConfigError
from sciplat.identity.services.users import IdentityService
from sciplat.identity.storage import database as _identity_tables  # noqa: F401 - registers tables
from sciplat.identity.storage.accounts import HostAccounts
from sciplat.labs.backend import LabBackend
from sciplat.labs.environments import registry
from sciplat.labs.environments.service import EnvironmentService
from sciplat.labs.local.backend import LocalBackend
from sciplat.labs.local.storage import cgroups
from sciplat.labs.local.storage.prefork import PreforkServers
from sciplat.labs.services.labs import EnvironmentCatalog, LabService
from sciplat.paths import DataDir, default_data_dir
from sciplat.quotas.services.quotas import (
    QuotaService,
    group_storage_limit_of,
    storage_limit_of,
)
from sciplat.quotas.services.resolver import QuotaResolver
from sciplat.quotas.services.usage import UsageService
from sciplat.shared import Shared

if TYPE_CHECKING:
    from sciplat.jobs.wiring import JobsServices
    from sciplat.labs.kubernetes.wiring import KubernetesServices
    from sciplat.tap.wiring import TapServices
from sciplat.volumes.service import VolumeService
from sciplat.volumes.storage_limits import StorageLimits, detect_storage_limits
from sciplat.volumes.tutorials import TutorialService


class Factory(Shared):
    """Owns the configuration and builds services on first use."""

    def __init__(self, data: DataDir, config: Config, cgroup_parent: str = "sciplat") -> None:
        self.data = data
        self.config = config
        self.cgroup_parent = cgroup_parent

    @classmethod
    def from_data_dir(cls, root: os.PathLike[str] | str | None = None) -> Factory:
        """Load ``sciplat.yaml`` from the data directory (default: see paths.default_data_dir).

        ``$SCIPLAT_CONFIG`` names another document; ``$SCIPLAT_BIND``, ``$SCIPLAT_PORT``,
        ``$SCIPLAT_HUB_PORT`` and ``$SCIPLAT_PROXY_API_PORT`` override those ``hub`` keys, and
        ``$SCIPLAT_TAP_PORT`` / ``$SCIPLAT_JOBS_PORT`` the TAP / jobs service's port and
        ``$SCIPLAT_DASK_PORTS`` (``PORT,API_PORT,SCHEDULER_PORT``) the Dask service's (how
        ``sciplat up --bind/--port`` reach the hub, and how several instances share a host).

        Raises:
            ConfigError: missing or invalid document.
        """
        data = DataDir(default_data_dir() if root is None else Path(root))
        config = load_config(Path(os.environ.get("SCIPLAT_CONFIG") or data.config))
        config = registry.merged(config, registry.load(data.environments))
        overrides = {
            key: os.environ[var]
            for key, var in (
                ("bind", "SCIPLAT_BIND"),
                ("port", "SCIPLAT_PORT"),
                ("hub_port", "SCIPLAT_HUB_PORT"),
                ("proxy_api_port", "SCIPLAT_PROXY_API_PORT"),
            )
            if os.environ.get(var)
        }
        if overrides:
            hub = config.hub.model_validate({**config.hub.model_dump(), **overrides})
            config = config.model_copy(update={"hub": hub})
        config = _service_port_overrides(config)
        return cls(data, config, os.environ.get("SCIPLAT_CGROUP_PARENT", "sciplat"))

    @property
    def as_root(self) -> bool:
        """Per-user UIDs, cgroups and host accounts need root."""
        return os.geteuid() == 0

    @cached_property
    def db(self) -> Database:
        url = self.config.hub.state_url or f"sqlite:///{self.data.state_db}"
        return Database(url)

    @cached_property
    def host_accounts(self) -> HostAccounts:
        mode = self.config.identity.host_accounts
        return HostAccounts(mode == "on" or (mode == "auto" and self.as_root))

    @cached_property
    def identity(self) -> IdentityService:
        return IdentityService(self.config, self.db, self.host_accounts)

    @cached_property
    def volumes(self) -> VolumeService:
        return VolumeService(self.config.volumes, self.as_root)

    @cached_property
    def lab_backend(self) -> LabBackend:
        if self.config.hub.lab_backend == "kubernetes":
            return self.kubernetes.backend
        return LocalBackend(cgroups.detect(self.cgroup_parent), prefork=self.prefork)

    @cached_property
    def prefork(self) -> PreforkServers:
        """The resident parents that fork labs, one per environment (see storage/prefork.py)."""
        return PreforkServers(self.data.run / "prefork", self.data.logs / "prefork")

    @cached_property
    def kubernetes(self) -> KubernetesServices:
        """Labs as pods: API client, backend, image catalog (hub.lab_backend: kubernetes)."""
        from sciplat.labs.kubernetes.wiring import (  # noqa: PLC0415 - client on use
            build_kubernetes,
            lab_groups,
        )

        def limits_of(name: str) -> dict[str, float | int | None]:
            effective = self.quotas.effective(self.identity.get_user(name))
            return {key: limit.value for key, limit in effective.limits.items()}

        group_limit_of = group_storage_limit_of(self.quota_resolver)
        return build_kubernetes(
            self.config.kubernetes,
            limits_of,
            lambda name: lab_groups(self.identity.get_user(name), group_limit_of),
        )

    @cached_property
    def environments(self) -> EnvironmentService:
        return EnvironmentService(self.config, self.data)

    @cached_property
    def tutorials(self) -> TutorialService:
        return TutorialService(self.config.tutorials, self.config.volumes.root, self.as_root)

    @cached_property
    def quota_resolver(self) -> QuotaResolver:
        return QuotaResolver(self.config.quotas)

    @cached_property
    def storage_limits(self) -> StorageLimits:
        return detect_storage_limits(
            self.config.volumes,
            self.as_root,
            storage_limit_of(self.quota_resolver),
            group_storage_limit_of(self.quota_resolver),
        )

    @cached_property
    def quotas(self) -> QuotaService:
        usage = UsageService(self.config.volumes, self.storage_limits)
        return QuotaService(self.quota_resolver, usage, self.storage_limits)

    @cached_property
    def labs(self) -> LabService:
        catalog: EnvironmentCatalog = (
            self.kubernetes.images
            if self.config.hub.lab_backend == "kubernetes"
            else self.environments
        )
        return LabService(
            self.config, self.lab_backend, self.volumes, catalog, self.data,
            self.as_root, self.quotas, self.storage_limits, self.tutorials,
        )  # fmt: skip

    @cached_property
    def tap(self) -> TapServices:
        """The TAP service's objects (catalogue backend, ADQL translation, access rules)."""
        from sciplat.tap.wiring import build_tap  # noqa: PLC0415 - DuckDB only when used

        quotas = self.quotas
        return build_tap(
            self.config.services.tap,
            self.data.root,
            hub_port=self.config.hub.hub_port,
            rate_check=lambda name, groups: quotas.check_rate_of(name, groups, "tap"),
            query_limits=quotas.query_limits,
            table_storage=lambda name, groups: (
                quotas.resolver.limit("table_storage", name, list(groups)).value
            ),
        )

    @cached_property
    def jobs(self) -> JobsServices:
        """The notebook jobs service's objects (job store, scheduler, result cache)."""
        from sciplat.jobs.wiring import build_jobs  # noqa: PLC0415 - papermill only when used

        return build_jobs(self)

    def isolation_warning(self) -> str | None:
        """Why labs are not isolated, if they are not (said at start and on the admin page)."""
        if not self.as_root:
            return (
                "sciplat is not running as root: every lab runs as this account, without "
                "per-user UIDs, cgroup limits or a private /tmp. Run as root for a multi-user "
                "platform."
            )
        if cgroups.detect(self.cgroup_parent) is None:
            return "no writable cgroup hierarchy: labs run without CPU, memory and process limits"
        return None


#: environment variable -> (service, its port fields), see Factory.from_data_dir
SERVICE_PORTS = {
    "SCIPLAT_TAP_PORT": ("tap", ("port",)),
    "SCIPLAT_JOBS_PORT": ("jobs", ("port",)),
    "SCIPLAT_DASK_PORTS": ("dask", ("port", "api_port", "scheduler_port")),
}


def _service_port_overrides(config: Config) -> Config:
    """``config`` with the services' ports from the environment (SERVICE_PORTS).

    Raises:
        ConfigError: a variable that is not a comma-separated list of as many ports.
    """
    services = config.services
    for var, (name, fields) in SERVICE_PORTS.items():
        text = os.environ.get(var)
        if not text:
            continue
        try:
            ports = [int(v) for v in text.split(",")]
        except ValueError:
            ports = []
        if len(ports) != len(fields):
            raise ConfigError(
                f"${var}={text!r}: give {len(fields)} port number(s), comma-separated "
                f"({', '.join(fields)} of services.{name})"
            )
        section = getattr(services, name)
        try:
            section = section.model_validate(
                {**section.model_dump(), **dict(zip(fields, ports, strict=True))}
            )
        except ValidationError as exc:
            reason = "; ".join(e["msg"] for e in exc.errors())
            raise ConfigError(f"${var}={text!r}: {reason}") from exc
        services = services.model_copy(update={name: section})
    return config.model_copy(update={"services": services})
