"""Users and groups as the rest of the platform sees them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Group:
    name: str
    gid: int
    description: str = ""


@dataclass(frozen=True)
class User:
    """A platform user. ``gid`` is the user's private group (same number as ``uid``)."""

    name: str
    uid: int
    gid: int
    admin: bool = False
    provider: str = "local"
    groups: tuple[Group, ...] = field(default=())

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def supplementary_gids(self) -> list[int]:
        return [g.gid for g in self.groups]
