"""The spawn menu: which environments and sizes a user is offered, and in what order.

Pure functions of the configuration (and of what is installed), in the order the Rubin
platform's spawner page made familiar: the recommended environment first, then the newest
release, the two newest weeklies and the three newest dailies as radio buttons; everything else
in a drop-down grouped by kind, newest first. Environments missing from disk are listed as
unavailable and never offered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sciplat.config import EnvironmentConfig, SizeConfig

KIND_ORDER = ("release", "weekly", "daily", "experimental")
#: How many of each kind get a radio button (after the recommended one).
RADIO_QUOTA = {"release": 1, "weekly": 2, "daily": 3, "experimental": 0}


@dataclass(frozen=True)
class MenuEntry:
    name: str
    label: str
    kind: str
    created: dt.date | None
    recommended: bool
    available: bool


@dataclass(frozen=True)
class EnvironmentMenu:
    radio: tuple[MenuEntry, ...]
    dropdown: tuple[tuple[str, tuple[MenuEntry, ...]], ...]
    unavailable: tuple[MenuEntry, ...]

    @property
    def default(self) -> str | None:
        return self.radio[0].name if self.radio else None

    def offered(self) -> set[str]:
        return {e.name for e in self.radio} | {e.name for _, g in self.dropdown for e in g}


def _entry(env: EnvironmentConfig, available: bool) -> MenuEntry:
    label = env.display_name or env.name
    return MenuEntry(env.name, label, env.kind, env.created, env.recommended, available)


def _newest_first(entries: Iterable[MenuEntry]) -> list[MenuEntry]:
    return sorted(entries, key=lambda e: (e.created or dt.date.min, e.name), reverse=True)


def environment_menu(
    environments: Iterable[EnvironmentConfig], available: Callable[[EnvironmentConfig], bool]
) -> EnvironmentMenu:
    """Order ``environments`` into radio buttons and a grouped drop-down."""
    entries = [_entry(e, available(e)) for e in environments]
    usable = [e for e in entries if e.available]
    radio: list[MenuEntry] = [e for e in usable if e.recommended]
    for kind in KIND_ORDER:
        pool = [e for e in _newest_first(usable) if e.kind == kind and e not in radio]
        radio += pool[: RADIO_QUOTA[kind]]
    rest = [e for e in usable if e not in radio]
    dropdown = tuple(
        (kind, tuple(group))
        for kind in KIND_ORDER
        if (group := [e for e in _newest_first(rest) if e.kind == kind])
    )
    unavailable = tuple(e for e in entries if not e.available)
    return EnvironmentMenu(tuple(radio), dropdown, unavailable)


def sizes_within(
    sizes: Iterable[SizeConfig], max_cpu: float | None, max_memory: int | None
) -> list[SizeConfig]:
    """The sizes a user may pick: those within their per-lab CPU and memory allowance (None:
    no limit)."""
    return [
        s
        for s in sizes
        if (max_cpu is None or s.cpu <= max_cpu) and (max_memory is None or s.memory <= max_memory)
    ]
