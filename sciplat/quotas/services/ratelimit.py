"""API rate limits (``api_rate``, requests per minute): a token bucket per (user, service).

Each bucket holds up to a minute's worth of requests and refills continuously, so a user may
burst up to the per-minute rate and then continues at the rate. State is in memory, per
process: a restart forgives everybody, which is fine for a rate limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sciplat.errors import ThrottledError
from sciplat.quotas.errors import QuotaExceededError


@dataclass(frozen=True)
class RateDecision:
    """Whether a request may go ahead; if not, ``retry_after`` seconds until it may (None:
    never, the rate is 0 or the request costs more than a full bucket)."""

    allowed: bool
    retry_after: int | None = None
    remaining: int = 0


@dataclass
class _Bucket:
    tokens: float
    updated: float
    capacity: float


class RateLimiter:
    """Token buckets per (user, service), with an injectable clock (seconds, monotonic)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000
    ) -> None:
        self.clock = clock
        self.max_buckets = max_buckets
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def hit(self, user: str, service: str, per_minute: int | None, cost: int = 1) -> RateDecision:
        """Count a request of ``cost`` by ``user`` to ``service`` under ``per_minute``
        (None: unlimited, 0: not allowed)."""
        if per_minute is None:
            return RateDecision(True)
        if per_minute <= 0 or cost > per_minute:
            return RateDecision(False, None)
        rate = per_minute / 60.0
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get((user, service))
            if bucket is None:
                self._make_room(now)
                bucket = _Bucket(float(per_minute), now, float(per_minute))
                self._buckets[(user, service)] = bucket
            else:
                elapsed = max(0.0, now - bucket.updated)
                bucket.tokens = min(float(per_minute), bucket.tokens + elapsed * rate)
                bucket.updated, bucket.capacity = now, float(per_minute)
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return RateDecision(True, None, int(bucket.tokens))
            wait = max(1, math.ceil((cost - bucket.tokens) / rate))
            return RateDecision(False, wait, int(bucket.tokens))

    def enforce(self, user: str, service: str, per_minute: int | None, cost: int = 1) -> None:
        """Like :meth:`hit`, raising when the request may not go ahead.

        Raises:
            ThrottledError: over the rate; ``retry_after`` says when to try again (HTTP 429).
            QuotaExceededError: the user's rate is 0 (HTTP 403).
        """
        decision = self.hit(user, service, per_minute, cost)
        if decision.allowed:
            return
        if decision.retry_after is None:
            raise QuotaExceededError(
                "api_rate", per_minute or 0, cost,
                f"Ask an administrator to allow API requests to {service} (quotas.api_rate).",
            )  # fmt: skip
        raise ThrottledError(
            f"Too many requests to {service}: your limit is {per_minute} per minute. Try "
            f"again in {decision.retry_after} s.",
            decision.retry_after,
        )

    def _make_room(self, now: float) -> None:
        """When there are too many buckets, forget those that have refilled (a new bucket
        starts full anyway), else the oldest tenth."""
        if len(self._buckets) < self.max_buckets:
            return
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * b.capacity / 60.0 >= b.capacity
        ]
        for key in full or list(self._buckets)[: len(self._buckets) // 10 or 1]:
            del self._buckets[key]
