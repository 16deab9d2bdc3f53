"""Size limits on the directories labs write to: the interface and what every backend shares.

Two kinds of directory carry a limit: each user's home (quota key ``storage``) and each group
directory (``group_storage``). Both are a :class:`Volume`; the backends in
:mod:`sciplat.volumes.storage_limits` and :mod:`sciplat.volumes.loop_images` work on volumes,
and the per-user and per-group methods here only say which volume is meant.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from sciplat.config import VolumesConfig
from sciplat.identity.models import Group, User
from sciplat.quotas.errors import QuotaExceededError
from sciplat.volumes.service import GROUP_MODE, HOME_MODE

log = logging.getLogger(__name__)

#: Callers warn when a directory is this full.
WARN_AT = 0.9
LimitOf = Callable[[User], int | None]
GroupLimitOf = Callable[[str], int | None]


@dataclass(frozen=True)
class Volume:
    """One limited directory: a user's home or a group's directory."""

    kind: str  # "home" or "group"
    name: str  # the user's or the group's name
    path: Path
    uid: int
    gid: int
    mode: int
    limit: int | None
    #: XFS project id: the user's UID or the group's GID (the ranges are disjoint)
    project: int

    @property
    def label(self) -> str:
        return f"the home of {self.name}" if self.kind == "home" else (
            f"the group directory of {self.name}")  # fmt: skip


@dataclass(frozen=True)
class StorageStatus:
    """A directory's configured ``limit``, the ``capacity`` enforced now (None: nothing is),
    bytes ``used``, and a ``note`` when the limit could not be applied fully yet.
    ``offered`` is False for a group directory whose ``group_storage`` is 0: labs get no
    link to it."""

    name: str
    limit: int | None
    capacity: int | None
    used: int
    note: str = ""
    offered: bool = True


class StorageLimits(ABC):
    """Applies each user's ``storage`` quota (``limit_of(user)``) to their home and each
    group's ``group_storage`` (``group_limit_of(name)``) to its directory, in bytes or None."""

    kind: ClassVar[str]
    enforcing: ClassVar[bool]

    def __init__(
        self,
        volumes: VolumesConfig,
        limit_of: LimitOf,
        reason: str,
        group_limit_of: GroupLimitOf | None = None,
    ) -> None:
        self.volumes = volumes
        self.limit_of = limit_of
        self.group_limit_of: GroupLimitOf = group_limit_of or (lambda name: None)
        self.reason = reason

    def describe(self) -> str:
        state = "enforcing" if self.enforcing else "not enforcing"
        return f"{self.kind} ({state}): {self.reason}"

    # which volume is meant

    def home(self, user: User) -> Path:
        return self.volumes.home_path(user.name)

    def home_volume(self, user: User) -> Volume:
        return Volume("home", user.name, self.home(user), user.uid, user.gid, HOME_MODE,
                      self.limit_of(user), user.uid)  # fmt: skip

    def group_volume(self, group: Group) -> Volume:
        return Volume("group", group.name, self.volumes.group_path(group.name), 0, group.gid,
                      GROUP_MODE, self.group_limit_of(group.name), group.gid)  # fmt: skip

    # homes

    def apply(self, user: User) -> StorageStatus:
        """Bring the user's home in line with their quota (before their lab starts).

        Raises:
            QuotaExceededError: the user's storage quota is 0.
            StorageShrinkError: the home holds more than the new limit allows.
            StorageLimitError: the limit could not be set up (message says why).
        """
        volume = self.home_volume(user)
        if volume.limit == 0:
            raise QuotaExceededError(
                "storage", 0, 0, "Ask an administrator for a storage quota (quotas.storage)."
            )
        return self.apply_volume(volume)

    def used(self, user: User) -> int:
        """Bytes the user's home takes."""
        return self.volume_used(self.home_volume(user))

    def capacity(self, user: User) -> int | None:
        """Bytes the home may hold as enforced now (None: not enforced)."""
        return self.volume_capacity(self.home_volume(user))

    def status(self, user: User) -> StorageStatus:
        return self.volume_status(self.home_volume(user))

    def usage_fraction(self, user: User) -> float | None:
        """How full the home is (1.0: full), or None without a limit."""
        return self.volume_fraction(self.home_volume(user))

    def warning(self, user: User) -> str | None:
        """A message for the user when the home is at least 90 % full."""
        fraction = self.usage_fraction(user)
        if fraction is None or fraction < WARN_AT:
            return None
        return (
            f"Your home directory is {min(fraction, 1.0):.0%} full. Delete files you no "
            "longer need, or ask an administrator to raise your storage quota."
        )

    def release(self, user: User) -> None:
        """Undo what :meth:`apply` set up that does not survive on its own (mounts).

        Raises:
            StorageLimitError: the home cannot be unmounted (a process works there).
        """
        self.release_volume(self.home_volume(user))

    # group directories

    def apply_group(self, group: Group) -> StorageStatus:
        """Bring a group directory in line with its ``group_storage`` (before a member's lab
        starts). A limit of 0 offers no directory: the status says so and nothing changes.

        Raises:
            StorageShrinkError: the directory holds more than the new limit allows.
            StorageLimitError: the limit could not be set up (message says why).
        """
        volume = self.group_volume(group)
        if volume.limit == 0:
            return StorageStatus(
                group.name, 0, 0, 0, f"No group directory for {group.name}: its group_storage "
                "quota is 0 (ask an administrator for one)", offered=False)  # fmt: skip
        return self.apply_volume(volume)

    def group_used(self, group: Group) -> int:
        """Bytes the group's directory takes."""
        return self.volume_used(self.group_volume(group))

    def group_warning(self, group: Group) -> str | None:
        """A message for members when the group's directory is at least 90 % full."""
        fraction = self.volume_fraction(self.group_volume(group))
        if fraction is None or fraction < WARN_AT:
            return None
        return (
            f"The group directory of {group.name} is {min(fraction, 1.0):.0%} full. Members "
            "should delete files they no longer need, or ask for a larger group_storage quota."
        )

    def release_group(self, group: Group) -> None:
        """Undo the group directory's mounts (when no lab runs).

        Raises:
            StorageLimitError: the directory cannot be unmounted.
        """
        self.release_volume(self.group_volume(group))

    # what backends implement

    @abstractmethod
    def apply_volume(self, volume: Volume) -> StorageStatus:
        """Set up ``volume``'s limit (``volume.limit`` is None or > 0)."""

    @abstractmethod
    def volume_used(self, volume: Volume) -> int:
        """Bytes the directory takes."""

    def volume_capacity(self, volume: Volume) -> int | None:
        return volume.limit

    def volume_status(self, volume: Volume) -> StorageStatus:
        return StorageStatus(volume.name, volume.limit, self.volume_capacity(volume),
                             self.volume_used(volume))  # fmt: skip

    def volume_fraction(self, volume: Volume) -> float | None:
        capacity = self.volume_capacity(volume)
        if not capacity:
            return None
        return self.volume_used(volume) / capacity

    def release_volume(self, volume: Volume) -> None:
        log.debug("%s: nothing to release for %s", self.kind, volume.label)
