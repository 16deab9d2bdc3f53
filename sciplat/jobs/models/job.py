"""A notebook job as requested, as stored, and as shown to its owner."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class JobRequest(BaseModel):
    """What a client submits: a notebook (a path in the home, or the document) and how to run it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field("", description="Notebook path, relative to the home or absolute in it.")
    notebook: dict[str, JsonValue] | None = Field(None, description="The notebook itself.")
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    environment: str = Field("", description="Environment name; default: the recommended one.")
    size: str = Field("", description="Lab size whose limits the job gets.")
    timeout: float | None = Field(None, gt=0, description="Seconds the whole run may take.")
    force: bool = Field(False, description="Run even when a cached result exists.")


@dataclass
class Job:
    """One job, as the store keeps it. ``state`` is the backend's LabState while it runs."""

    id: str
    user: str
    status: JobStatus
    notebook: str
    parameters: dict[str, Any]
    environment: str
    size: str
    timeout: float
    created: float
    result_dir: str
    cache_key: str = ""
    cached: bool = False
    cached_from: str = ""
    cached_time: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    cells_done: int = 0
    cells_total: int = 0
    error: str = ""
    error_cell: int | None = None
    error_source: str = ""
    state: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Job:
        return cls(**{**data, "status": JobStatus(data["status"])})

    def view(self) -> dict[str, Any]:
        """What the owner sees (the API's job document)."""
        progress = f"cell {self.cells_done} of {self.cells_total}" if self.cells_total else ""
        return {
            "id": self.id,
            "user": self.user,
            "status": self.status.value,
            "notebook": self.notebook,
            "parameters": self.parameters,
            "environment": self.environment,
            "size": self.size,
            "timeout": self.timeout,
            "created": self.created,
            "started": self.started or None,
            "finished": self.finished or None,
            "progress": progress,
            "cells_done": self.cells_done,
            "cells_total": self.cells_total,
            "cached": self.cached,
            "cached_from": self.cached_from or None,
            "cached_time": self.cached_time or None,
            "result": f"{self.result_dir}/output.ipynb" if self.result_dir else None,
            "error": self.error or None,
            "error_cell": self.error_cell,
            "error_source": self.error_source or None,
        }


@dataclass(frozen=True)
class CacheEntry:
    """A stored result: ``key`` of ``user``'s run ``job_id`` whose files are in ``result_dir``."""

    user: str
    key: str
    job_id: str
    created: float
    result_dir: str

    def view(self, size: int | None = None) -> dict[str, Any]:
        return {
            "key": self.key,
            "job": self.job_id,
            "created": self.created,
            "result_dir": self.result_dir,
            "bytes": size,
        }
