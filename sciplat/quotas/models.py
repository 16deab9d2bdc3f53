"""Quotas and usage as plain data: what a user may use, where each limit comes from, and
what they use now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sciplat.quotas.config import QuotaLimits

Number = int | float

#: Every quota key, in the order of the config model.
QUOTA_KEYS: tuple[str, ...] = tuple(QuotaLimits.model_fields)
#: Keys whose values are sizes in bytes.
BYTE_KEYS = frozenset({"memory", "storage", "group_storage", "dask_memory", "table_storage"})
_UNITS = {
    "cores": " cores",
    "dask_cores": " cores",
    "query_seconds": " s",
    "api_rate": " requests/min",
    "query_rows": " rows",
}
_TITLES = {
    "labs": "Running labs",
    "cores": "CPU cores of your labs",
    "memory": "Memory of your labs",
    "storage": "Home directory storage",
    "group_storage": "Group directory storage",
    "dask_workers": "Dask workers",
    "dask_cores": "CPU cores of your Dask workers",
    "dask_memory": "Memory of your Dask workers",
    "jobs": "Running notebook jobs",
    "query_rows": "Rows of one query",
    "query_seconds": "Run time of one query",
    "table_storage": "Storage of your catalogue tables",
    "api_rate": "API requests",
}

UNLIMITED = "unlimited"
DEFAULT = "default"


def title(key: str) -> str:
    """A short human name of quota ``key`` (for messages)."""
    return _TITLES.get(key, key)


def format_bytes(value: Number) -> str:
    """``20 MiB``, ``1.5 GiB``, ``512 B``."""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            text = f"{amount:.1f}".removesuffix(".0")
            return f"{text} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_amount(key: str, value: Number | None) -> str:
    """``value`` of quota ``key`` for people: sizes in binary units, cores, per-minute rates."""
    if value is None:
        return UNLIMITED
    if key in BYTE_KEYS:
        return format_bytes(value)
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text + _UNITS.get(key, "")


@dataclass(frozen=True)
class Limit:
    """One effective limit and where it comes from: ``default``, ``group:<name>``,
    ``user:<name>`` or ``unlimited`` (then ``value`` is None)."""

    value: Number | None
    source: str

    @property
    def unlimited(self) -> bool:
        return self.value is None

    def allows(self, amount: Number) -> bool:
        """Whether using ``amount`` in total stays within the limit."""
        return self.value is None or amount <= self.value


@dataclass(frozen=True)
class EffectiveQuota:
    """Every limit of one user, each with its source."""

    user: str
    groups: tuple[str, ...]
    limits: Mapping[str, Limit]

    def __getitem__(self, key: str) -> Limit:
        """The limit of ``key``.

        Raises:
            KeyError: not a quota key.
        """
        return self.limits[key]

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "groups": list(self.groups),
            "limits": {k: {"limit": v.value, "source": v.source} for k, v in self.limits.items()},
        }


@dataclass(frozen=True)
class LabUse:
    """What one running lab holds: its size's cores and memory."""

    cores: float
    memory: int


@dataclass(frozen=True)
class Usage:
    """What a user uses now. A key missing from ``values`` is not measured (its service is
    not part of this platform yet); ``group_storage`` holds bytes per group directory."""

    user: str
    values: Mapping[str, Number]
    group_storage: Mapping[str, int] = field(default_factory=dict)

    def get(self, key: str) -> Number | None:
        if key == "group_storage":
            return max(self.group_storage.values(), default=None)
        return self.values.get(key)


@dataclass(frozen=True)
class QuotaLine:
    """One row of ``sciplat quota show``."""

    key: str
    limit: Limit
    used: Number | None
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        """Used / limit, when both are known and the limit is not 0."""
        if self.used is None or self.limit.value is None or self.limit.value == 0:
            return None
        return float(self.used) / float(self.limit.value)


@dataclass(frozen=True)
class QuotaReport:
    """A user's limits, their sources and current use, and how storage is enforced."""

    user: str
    groups: tuple[str, ...]
    lines: tuple[QuotaLine, ...]
    storage_backend: str
    storage_enforced: bool
    storage_reason: str
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "groups": list(self.groups),
            "storage_backend": {
                "kind": self.storage_backend,
                "enforcing": self.storage_enforced,
                "reason": self.storage_reason,
            },
            "quotas": {
                line.key: {
                    "limit": line.limit.value,
                    "source": line.limit.source,
                    "used": line.used,
                    **({"detail": line.detail} if line.detail else {}),
                }
                for line in self.lines
            },
            "warnings": list(self.warnings),
        }
