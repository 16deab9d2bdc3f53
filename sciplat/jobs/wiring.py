"""Builds the jobs service's objects from the platform's factory (called by sciplat.factory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sciplat.jobs.config import JobsConfig
from sciplat.jobs.services.access import JobsAccess
from sciplat.jobs.services.execution import Execution
from sciplat.jobs.services.jobs import JobService
from sciplat.jobs.storage.store import JobStore
from sciplat.paths import hub_api_url
from sciplat.tap.storage.hub import HubClient

if TYPE_CHECKING:
    from sciplat.factory import Factory


@dataclass
class JobsServices:
    """Everything the jobs app uses."""

    config: JobsConfig
    access: JobsAccess
    jobs: JobService
    store: JobStore


def build_jobs(factory: Factory, hub: HubClient | None = None) -> JobsServices:
    """Wire the jobs objects onto the platform's own (identity, quotas, lab backend, volumes)."""
    config = factory.config.services.jobs
    quotas = factory.quotas
    hub = hub or HubClient(hub_api_url(config.hub_api_url, factory.config.hub.hub_port),
                           config.token_cache_seconds)  # fmt: skip
    access = JobsAccess(
        hub,
        config.required_scope,
        lambda name, groups: quotas.check_rate_of(name, groups, "jobs"),
    )
    store = JobStore(factory.data.jobs_db)
    execution = Execution(
        factory.config,
        config,
        factory.lab_backend,
        factory.volumes,
        factory.storage_limits,
        factory.data,
        factory.as_root,
    )
    service = JobService(
        factory.config, store, factory.identity, factory.environments, quotas, execution
    )
    return JobsServices(config=config, access=access, jobs=service, store=store)
