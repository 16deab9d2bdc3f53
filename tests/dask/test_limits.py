"""The per-user Dask quota arithmetic: totals over all of a user's clusters."""

from __future__ import annotations

from sciplat.dask.services.limits import DaskLimits, Holding, allowed_workers, clamp

GIB = 2**30


def test_workers_bind_over_several_clusters() -> None:
    others = [Holding(2, 1, GIB), Holding(1, 2, 2 * GIB)]
    d = clamp(10, 0, DaskLimits(workers=5), others, 1, GIB)
    assert d.count == 2
    assert "dask_workers quota of 5" in d.message
    assert "3 in use by your other clusters" in d.message
    assert "Scaling to 2 instead" in d.message


def test_cores_bind() -> None:
    # 2 x 2 cores held elsewhere; 8 cores: two more 2-core workers
    d = clamp(5, 0, DaskLimits(workers=100, cores=8), [Holding(2, 2, GIB)], 2, GIB)
    assert d.count == 2
    assert "dask_cores quota of 8 cores" in d.message
    assert "4 cores in use" in d.message


def test_memory_binds() -> None:
    d = clamp(
        4, 1, DaskLimits(workers=10, cores=10, memory=5 * GIB), [Holding(1, 1, GIB)], 1, 2 * GIB
    )
    assert d.count == 2  # 4 GiB left: 2 workers of 2 GiB
    assert "dask_memory quota of 5 GiB" in d.message


def test_within_quota_and_unlimited() -> None:
    assert clamp(3, 0, DaskLimits(workers=3), [], 1, GIB).message == ""
    assert clamp(3, 0, DaskLimits(workers=3), [], 1, GIB).count == 3
    assert clamp(1000, 0, DaskLimits(), [Holding(50, 4, GIB)], 4, GIB).count == 1000
    assert allowed_workers(DaskLimits(), [], 1, GIB) == (None, "")


def test_zero_forbids() -> None:
    assert DaskLimits(workers=0).forbidden() == "dask_workers"
    assert DaskLimits(workers=3, memory=0).forbidden() == "dask_memory"
    assert DaskLimits().forbidden() is None
    assert clamp(2, 0, DaskLimits(cores=0), [], 1, GIB).count == 0


def test_lowered_quota_keeps_running_workers() -> None:
    # 4 running, quota now 2: asking for more adds none and stops none
    d = clamp(6, 4, DaskLimits(workers=2), [], 1, GIB)
    assert d.count == 4
    assert "dask_workers quota of 2" in d.message
    # scaling down is always allowed
    assert clamp(1, 4, DaskLimits(workers=2), [], 1, GIB).count == 1


def test_other_clusters_over_quota_leave_no_room() -> None:
    d = clamp(2, 0, DaskLimits(workers=3), [Holding(4, 1, GIB)], 1, GIB)
    assert d.count == 0
