"""sciplat/quotas/services/ratelimit.py: token buckets per (user, service), a fake clock."""

from __future__ import annotations

import pytest

from sciplat.errors import ThrottledError
from sciplat.quotas.errors import QuotaExceededError
from sciplat.quotas.services.ratelimit import RateLimiter
from tests.support.clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_burst_up_to_the_rate_then_denied_with_retry_after(clock):
    limiter = RateLimiter(clock)
    results = [limiter.hit("alice", "tap", 60) for _ in range(61)]
    assert all(r.allowed for r in results[:60])
    assert not results[60].allowed
    assert results[60].retry_after == 1  # one request per second comes back


def test_refills_with_time(clock):
    limiter = RateLimiter(clock)
    for _ in range(6):
        assert limiter.hit("alice", "tap", 6).allowed
    denied = limiter.hit("alice", "tap", 6)
    assert (denied.allowed, denied.retry_after) == (False, 10)
    clock.now += 9.9
    assert not limiter.hit("alice", "tap", 6).allowed
    clock.now += 0.2
    assert limiter.hit("alice", "tap", 6).allowed


def test_retry_after_rounds_up(clock):
    limiter = RateLimiter(clock)
    assert limiter.hit("a", "s", 1).allowed
    clock.now += 30
    assert limiter.hit("a", "s", 1).retry_after == 30
    clock.now += 29.5
    assert limiter.hit("a", "s", 1).retry_after == 1


def test_users_and_services_have_their_own_buckets(clock):
    limiter = RateLimiter(clock)
    assert limiter.hit("alice", "tap", 1).allowed
    assert not limiter.hit("alice", "tap", 1).allowed
    assert limiter.hit("alice", "jobs", 1).allowed
    assert limiter.hit("bob", "tap", 1).allowed


def test_unlimited_and_zero(clock):
    limiter = RateLimiter(clock)
    assert all(limiter.hit("a", "s", None).allowed for _ in range(1000))
    zero = limiter.hit("a", "s", 0)
    assert (zero.allowed, zero.retry_after) == (False, None)


def test_cost_larger_than_the_bucket_never_passes(clock):
    decision = RateLimiter(clock).hit("a", "s", 5, cost=6)
    assert (decision.allowed, decision.retry_after) == (False, None)


def test_clock_going_backwards_does_not_add_tokens(clock):
    limiter = RateLimiter(clock)
    assert limiter.hit("a", "s", 1).allowed
    clock.now -= 100
    assert not limiter.hit("a", "s", 1).allowed


def test_rate_change_takes_effect(clock):
    limiter = RateLimiter(clock)
    for _ in range(10):
        limiter.hit("a", "s", 10)
    assert not limiter.hit("a", "s", 10).allowed
    clock.now += 1
    assert limiter.hit("a", "s", 600).allowed  # 1 s at 10/s refills 10 tokens


def test_enforce_raises_throttled_and_quota_errors(clock):
    limiter = RateLimiter(clock)
    limiter.enforce("a", "tap", 1)
    with pytest.raises(ThrottledError) as info:
        limiter.enforce("a", "tap", 1)
    assert info.value.retry_after == 60
    assert info.value.status_code == 429
    assert "1 per minute" in info.value.message
    with pytest.raises(QuotaExceededError) as denied:
        limiter.enforce("a", "tap", 0)
    assert denied.value.status_code == 403
    assert "api_rate" in denied.value.message


def test_bucket_count_is_bounded(clock):
    limiter = RateLimiter(clock, max_buckets=100)
    for i in range(1000):
        limiter.hit(f"user{i}", "s", 10)
        clock.now += 0.01
    assert len(limiter._buckets) <= 100
    for i in range(1000, 1010):  # idle buckets refilled: the ones forgotten first
        clock.now += 10
        limiter.hit(f"user{i}", "s", 10)
    assert len(limiter._buckets) <= 100
