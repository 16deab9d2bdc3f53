"""What runs and what it uses: the rows of `sciplat status` and the admin page, built once."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sciplat.config import Config
from sciplat.labs.backend import LabBackend
from sciplat.labs.models import LabState


@dataclass(frozen=True)
class LabRow:
    user: str
    server: str
    running: bool
    pid: int
    environment: str
    size: str
    age_seconds: float
    memory: int
    memory_limit: int
    cpu_seconds: float
    cpu_limit: float
    pids: int
    oom_kills: int


def lab_rows(
    config: Config,
    backend: LabBackend,
    labs: Iterable[tuple[str, str, LabState, bool]],
    now: float | None = None,
) -> list[LabRow]:
    """One row per (user, server, state, running) with usage from the backend and the limits
    of the lab's size."""
    now = time.time() if now is None else now
    sizes = {s.name: s for s in config.sizes}
    rows = []
    for user, server, state, running in labs:
        use = backend.usage(state) if running else None
        size = sizes.get(state.size)
        rows.append(
            LabRow(
                user=user,
                server=server,
                running=running,
                pid=state.pid,
                environment=state.environment or "?",
                size=state.size or "?",
                age_seconds=max(0.0, now - state.started) if state.started else 0.0,
                memory=use.memory if use else 0,
                memory_limit=size.memory if size else 0,
                cpu_seconds=use.cpu_seconds if use else 0.0,
                cpu_limit=size.cpu if size else 0.0,
                pids=use.pids if use else 0,
                oom_kills=use.oom_kills if use else 0,
            )
        )
    return sorted(rows, key=lambda r: (r.user, r.server))


def human_age(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours < 48 else f"{hours // 24}d"
