"""What a user uses now, from plain inputs: the running labs' sizes are handed in, homes are
measured by the storage limits backend (or a directory walk), group directories by a walk."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from sciplat.config import Config, VolumesConfig
from sciplat.identity.models import Group, User
from sciplat.labs.models import LabState
from sciplat.quotas.models import LabUse, Number, Usage
from sciplat.quotas.storage import tree


def counters_dir(volumes: VolumesConfig) -> Path:
    """Where services that run apart from the CLI (Dask) keep their users' counters: one
    ``<service>.json`` each, ``{user: {quota key: amount}}``, written atomically by root."""
    return volumes.root / ".sciplat" / "counters"


def service_counters(volumes: VolumesConfig, user: str) -> dict[str, Number]:
    """The counters of ``user`` that services published (a missing or damaged file: none)."""
    values: dict[str, Number] = {}
    for path in sorted(counters_dir(volumes).glob("*.json")):
        try:
            mine = json.loads(path.read_text()).get(user, {})
        except (OSError, ValueError, AttributeError):
            continue
        values.update({k: v for k, v in mine.items() if isinstance(v, int | float)})
    return values


def lab_use(size_name: str, config: Config) -> LabUse:
    """The cores and memory a lab of size ``size_name`` holds (a size no longer configured
    counts as the default size)."""
    size = next((s for s in config.sizes if s.name == size_name), config.default_size())
    return LabUse(cores=size.cpu, memory=size.memory)


class HomeUsage(Protocol):
    """Measures homes and group directories; :class:`sciplat.volumes.limits.StorageLimits`
    is one."""

    def used(self, user: User) -> int: ...

    def group_used(self, group: Group) -> int: ...


class UsageService:
    """Adds up a user's use of every quota key that this platform can measure."""

    def __init__(self, volumes: VolumesConfig, homes: HomeUsage | None = None) -> None:
        self.volumes = volumes
        self.homes = homes

    def home(self, user: User) -> int:
        """Bytes the user's home takes."""
        if self.homes is not None:
            return self.homes.used(user)
        return tree.measure(self.volumes.home_path(user.name)).size

    def group_directories(self, groups: Sequence[Group]) -> dict[str, int]:
        """Bytes each group's shared directory takes."""
        if self.homes is not None:
            return {g.name: self.homes.group_used(g) for g in groups}
        return {g.name: tree.measure(self.volumes.group_path(g.name)).size for g in groups}

    def usage(
        self,
        user: User,
        labs: Sequence[LabUse],
        counters: Mapping[str, Number] | None = None,
        measure_groups: bool = True,
    ) -> Usage:
        """The user's use: labs, cores and memory of the running ``labs``, the home's size,
        the group directories' sizes, and ``counters`` from other services (``jobs``,
        ``dask_workers``, ...), which win over what is computed here."""
        values: dict[str, Number] = {
            "labs": len(labs),
            "cores": sum(lab.cores for lab in labs),
            "memory": sum(lab.memory for lab in labs),
            "storage": self.home(user),
        }
        values.update(service_counters(self.volumes, user.name))
        values.update(counters or {})
        groups = self.group_directories(user.groups) if measure_groups else {}
        return Usage(user.name, values, groups)


def labs_by_user(
    entries: Iterable[tuple[str, str, LabState, bool]], config: Config
) -> dict[str, list[LabUse]]:
    """What each user's running labs hold, from (user, server, state, running) entries."""
    labs: dict[str, list[LabUse]] = {}
    for user, _server, state, running in entries:
        if running:
            labs.setdefault(user, []).append(lab_use(state.size, config))
    return labs
