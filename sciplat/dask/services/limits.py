"""Pure: how many workers a cluster may have within its user's ``dask_*`` quotas, which are
totals over ALL the user's clusters (dask-gateway's own limits are per cluster only).

A cluster holds ``max(target, workers not yet stopped)`` workers of its own size: a target
not reached yet is already promised to it, so two clusters scaling at once cannot both take
the same room. Quotas only ever block new workers: a cluster is never clamped below the
workers it already runs (a lowered quota leaves running workers alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sciplat.quotas.models import format_amount

#: the quota keys, in the order a message names the binding one
KEYS = ("dask_workers", "dask_cores", "dask_memory")


@dataclass(frozen=True)
class Holding:
    """One cluster's workers: how many, and each one's cores and memory (bytes)."""

    workers: int
    cores: float
    memory: int


@dataclass(frozen=True)
class DaskLimits:
    """A user's ``dask_*`` quotas; None: unlimited."""

    workers: int | None = None
    cores: float | None = None
    memory: int | None = None

    def forbidden(self) -> str | None:
        """The quota key that is 0 (no Dask at all), else None."""
        for key, value in zip(KEYS, (self.workers, self.cores, self.memory), strict=True):
            if value is not None and value <= 0:
                return key
        return None


@dataclass(frozen=True)
class Decision:
    """The worker count a cluster gets, and why it is less than asked (empty: as asked)."""

    count: int
    message: str = ""


def in_use(holdings: Iterable[Holding]) -> tuple[int, float, int]:
    """Total workers, cores and memory of ``holdings``."""
    items = list(holdings)
    return (
        sum(h.workers for h in items),
        sum(h.workers * h.cores for h in items),
        sum(h.workers * h.memory for h in items),
    )


def allowed_workers(
    limits: DaskLimits, others: Iterable[Holding], cores: float, memory: int
) -> tuple[int | None, str]:
    """How many workers of ``cores``/``memory`` fit beside ``others`` (None: no bound), and
    the quota key that binds (empty when none does)."""
    workers_used, cores_used, memory_used = in_use(others)
    room: list[tuple[int, str]] = []
    if limits.workers is not None:
        room.append((limits.workers - workers_used, "dask_workers"))
    if limits.cores is not None:
        room.append((int((limits.cores - cores_used) // cores + 1e-9), "dask_cores"))
    if limits.memory is not None:
        room.append(((limits.memory - memory_used) // memory, "dask_memory"))
    if not room:
        return None, ""
    fits, key = min(room, key=lambda r: r[0])
    return max(0, fits), key


def clamp(
    requested: int,
    running: int,
    limits: DaskLimits,
    others: Iterable[Holding],
    cores: float,
    memory: int,
) -> Decision:
    """The count a scale request of ``requested`` workers gets for a cluster that runs
    ``running`` workers of ``cores``/``memory`` each, beside the user's ``others``.

    Scaling down (or staying) is always allowed; scaling up stops at the quotas, but never
    below ``running``.
    """
    if requested <= running:
        return Decision(requested)
    others = list(others)
    fits, key = allowed_workers(limits, others, cores, memory)
    if fits is None or requested <= fits:
        return Decision(requested)
    count = max(running, fits)
    limit = {"dask_workers": limits.workers, "dask_cores": limits.cores,
             "dask_memory": limits.memory}[key]  # fmt: skip
    used = dict(zip(KEYS, in_use(others), strict=True))[key]
    need = {"dask_workers": 1, "dask_cores": cores, "dask_memory": memory}[key]
    return Decision(
        count,
        f"Scale request of {requested} workers would exceed your {key} quota of "
        f"{format_amount(key, limit)} ({format_amount(key, used)} in use by your other "
        f"clusters, {format_amount(key, need)} per worker). Scaling to {count} instead.",
    )
