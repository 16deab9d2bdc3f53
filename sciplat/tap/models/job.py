"""An asynchronous TAP query as a UWS 1.1 job."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Phase(StrEnum):
    """UWS 1.1 execution phases (the ones this service reaches; HELD/SUSPENDED never occur)."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


ACTIVE = frozenset({Phase.QUEUED, Phase.EXECUTING})
FINISHED = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})


@dataclass(frozen=True)
class JobOwner:
    """Who submitted a job, as much as a re-queued job needs to run again after a restart."""

    name: str | None
    groups: tuple[str, ...] = ()
    max_rows: int | None = None
    max_seconds: float | None = None


@dataclass(frozen=True)
class Job:
    """One UWS job: a TAP query with its parameters, phase, times and result."""

    id: str
    owner: JobOwner
    phase: Phase
    created: datetime
    destruction: datetime
    execution_duration: float  # seconds; the query is stopped in the database after it
    parameters: dict[str, str] = field(default_factory=dict)  # upper-case names
    run_id: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    error: str | None = None
    result_mime: str | None = None
    result_rows: int | None = None
    overflow: bool = False
