"""Builds the TAP service's long-lived objects from its config (called by sciplat.factory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sciplat.errors import ConfigError
from sciplat.paths import hub_api_url
from sciplat.tap.config import TapConfig
from sciplat.tap.services.access import AccessService, QueryLimits, RateCheck
from sciplat.tap.services.catalogue import CatalogueService
from sciplat.tap.services.jobs import JobService
from sciplat.tap.services.mydb import MyDBService, StorageLimit, UserTableHost
from sciplat.tap.services.query import QueryService
from sciplat.tap.services.upload import UploadService
from sciplat.tap.storage.backend import CatalogueBackend
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.storage.hub import HubClient
from sciplat.tap.storage.jobs import JobStore
from sciplat.tap.storage.mydb import MyDBStore
from sciplat.tap.storage.postgres import PostgresBackend


@dataclass
class TapServices:
    """Everything the TAP app and the ``catalog`` commands use."""

    config: TapConfig
    backend: CatalogueBackend
    access: AccessService
    query: QueryService
    catalogues: CatalogueService
    uploads: UploadService
    jobs: JobService
    mydb: MyDBService


def tap_directory(config: TapConfig, data_root: Path) -> Path:
    """Where the catalogue files live: ``data_dir`` or ``<data>/tap``."""
    return Path(config.data_dir) if config.data_dir else data_root / "tap"


def build_backend(config: TapConfig, data_root: Path) -> CatalogueBackend:
    """The catalogue backend ``config.backend`` names (nothing is opened yet).

    Raises:
        ConfigError: the postgres backend without a ``dsn``.
    """
    if config.backend == "postgres":
        if not config.dsn:
            raise ConfigError(
                "services.tap.backend is postgres but services.tap.dsn is empty: give the "
                "catalogue database's connection string (host=... dbname=... user=...)"
            )
        return PostgresBackend(config.dsn, query_role=config.query_role, pool_size=config.pool_size)
    return DuckDBBackend(
        tap_directory(config, data_root),
        threads=config.threads,
        memory_limit=config.memory_limit,
        row_group_size=config.row_group_size,
    )


def build_tap(
    config: TapConfig,
    data_root: Path,
    hub: HubClient | None = None,
    backend: CatalogueBackend | None = None,
    hub_port: int = 8081,
    rate_check: RateCheck | None = None,
    query_limits: QueryLimits | None = None,
    jobs_dir: Path | None = None,
    table_storage: StorageLimit | None = None,
    mydb_dir: Path | None = None,
) -> TapServices:
    """Wire the TAP objects; tests pass their own ``hub`` client and ``backend``.

    Raises:
        ConfigError: the postgres backend without a ``dsn``.
    """
    backend = backend or build_backend(config, data_root)
    hub = hub or HubClient(hub_api_url(config.hub_api_url, hub_port), config.token_cache_seconds)
    access = AccessService(config, hub, rate_check, query_limits)
    # MyDB: users' tables under <tapdir>/mydb/, metadata in <tapdir>/mydb.sqlite (mydb_dir in
    # tests); table_storage is the platform's quota resolver's limit of (user, groups)
    mydb = MyDBService(config, MyDBStore(mydb_dir or tap_directory(config, data_root)), access,
                       backend.catalogue, table_storage,
                       backend if isinstance(backend, UserTableHost) else None)  # fmt: skip
    query = QueryService(config, backend, access, mydb)
    uploads = UploadService(config)
    # async jobs: records in <tapdir>/jobs.sqlite, files under <tapdir>/jobs/ (jobs_dir in tests)
    store = JobStore(jobs_dir or tap_directory(config, data_root))
    return TapServices(
        config=config,
        backend=backend,
        access=access,
        query=query,
        catalogues=CatalogueService(backend),
        uploads=uploads,
        jobs=JobService(config, store, query, uploads),
        mydb=mydb,
    )
