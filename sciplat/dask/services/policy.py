"""Who may have how many Dask workers: the user's ``dask_*`` quotas from the platform's
quota resolver, re-read when ``sciplat.yaml`` changes (no restart), applied to the user's
clusters as the gateway's database holds them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from sciplat.config import load_config
from sciplat.dask.services.limits import DaskLimits, Decision, Holding, clamp
from sciplat.errors import SciplatError
from sciplat.quotas.services.ratelimit import RateLimiter
from sciplat.quotas.services.resolver import QuotaResolver

log = logging.getLogger(__name__)


class DaskQuotas:
    """The ``dask_*`` limits of a user, always from the current config document."""

    def __init__(
        self, resolver: QuotaResolver, config_path: Path, groups_of: Callable[[str], list[str]]
    ) -> None:
        self.resolver = resolver
        self.config_path = config_path
        self.groups_of = groups_of
        self.limiter = RateLimiter()
        self._mtime = self._stat()

    def _stat(self) -> int:
        try:
            return self.config_path.stat().st_mtime_ns
        except OSError:
            return 0

    def _current(self) -> QuotaResolver:
        """The resolver of the document as it is now (a changed quota applies at once; a
        document that does not validate keeps the last good one)."""
        mtime = self._stat()
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self.resolver = QuotaResolver(load_config(self.config_path).quotas)
                log.info("dask: quotas re-read from %s", self.config_path)
            except SciplatError as err:
                log.error("dask: keeping the last quotas; %s", err.message)
        return self.resolver

    def limits(self, user: str) -> DaskLimits:
        resolver = self._current()
        groups = self.groups_of(user)

        def value(key: str) -> float | int | None:
            return resolver.limit(key, user, groups).value

        workers, cores, memory = value("dask_workers"), value("dask_cores"), value("dask_memory")
        return DaskLimits(
            None if workers is None else int(workers),
            None if cores is None else float(cores),
            None if memory is None else int(memory),
        )

    def check_rate(self, user: str) -> None:
        """Count one request of ``user`` to the Dask service against their ``api_rate``.

        Raises:
            ThrottledError: over the rate (HTTP 429 with Retry-After).
            QuotaExceededError: their ``api_rate`` is 0 (HTTP 403).
        """
        value = self._current().limit("api_rate", user, self.groups_of(user)).value
        self.limiter.enforce(user, "dask", None if value is None else int(value))

    def decide(
        self,
        user: str,
        requested: int,
        running: int,
        others: Iterable[Holding],
        cores: float,
        memory: int,
    ) -> Decision:
        return clamp(requested, running, self.limits(user), others, cores, memory)
