"""The fair queue across users (pure)."""

from __future__ import annotations

from sciplat.jobs.services.fairqueue import FairQueue


def drain(q: FairQueue, may: dict[str, bool] | None = None) -> list[str]:
    out = []
    while (picked := q.pop(lambda u: (may or {}).get(u, True))) is not None:
        out.append(picked[1])
    return out


def test_users_take_turns_and_each_keeps_their_order() -> None:
    q = FairQueue()
    for i in range(4):
        q.push("busy", f"b{i}")
    q.push("quiet", "q0")
    q.push("other", "o0")
    q.push("other", "o1")
    assert len(q) == 7
    assert drain(q) == ["b0", "q0", "o0", "b1", "o1", "b2", "b3"]


def test_a_user_at_their_quota_is_skipped_not_waited_for() -> None:
    q = FairQueue()
    q.push("full", "f0")
    q.push("free", "x0")
    assert drain(q, {"full": False}) == ["x0"]
    assert q.queued("full") == ["f0"]
    assert q.pop(lambda u: False) is None


def test_a_cancelled_job_leaves_the_queue() -> None:
    q = FairQueue()
    q.push("a", "1")
    q.push("a", "2")
    assert q.remove("1") and not q.remove("1")
    assert drain(q) == ["2"]
    assert not q.remove("2") and len(q) == 0
