"""What a lab backend is asked to start, and what it must remember to find the lab again."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LabLimits:
    cpu: float
    memory: int
    pids: int


@dataclass(frozen=True)
class LabSpec:
    """Everything needed to start one lab; built by :func:`sciplat.labs.builder.build_spec`."""

    user: str
    server: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: Path
    environment: str
    size: str
    command: tuple[str, ...]
    env: dict[str, str]
    limits: LabLimits
    ip: str
    port: int
    log_path: Path
    #: drop to uid/gid, own cgroup, private /tmp; False when the platform is not root
    isolate: bool = True

    @property
    def slug(self) -> str:
        """Unique per user and server; names cgroups and log files."""
        return f"{self.user}--{self.server}" if self.server else self.user


@dataclass
class LabState:
    """Persisted by the hub (Spawner state) so a restarted hub re-attaches instead of
    starting a duplicate. ``start_time`` guards against a recycled pid."""

    backend: str
    slug: str
    pid: int
    start_time: int
    ip: str
    port: int
    log_path: str
    cgroup: str = ""
    environment: str = ""
    size: str = ""
    #: wall-clock start (seconds since the epoch), for the lab's age
    started: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabState | None:
        try:
            return cls(**data)
        except TypeError:
            return None


@dataclass(frozen=True)
class LabOptions:
    """What the user chose on the spawn page, validated (names only, never paths)."""

    environment: str
    size: str
    reset: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LabUsage:
    """What a running lab uses, read from its cgroup."""

    memory: int = 0
    cpu_seconds: float = 0.0
    pids: int = 0
    oom_kills: int = 0
