"""Storage limits on homes: one interface, three backends, chosen once at start.

- :class:`XfsProjectQuota`: the storage root is on XFS mounted with ``prjquota``; each home
  is a project with a hard limit (the usual production host).
- :class:`LoopImageLimits`: otherwise, as root, each home is an ext4 image file
  (``<volumes.root>/images/<user>.ext4``, sparse) loop-mounted on the home directory. The
  kernel stops writes with ENOSPC at the image's size. Works without kernel quota support.
- :class:`ReportOnly`: not root (or the tools are missing): homes are measured and reported,
  nothing is enforced.

:func:`detect_storage_limits` picks one and says why (:meth:`StorageLimits.describe`).
Call :meth:`StorageLimits.apply` before a user's lab starts (then ``VolumeService.provision``,
which repairs owner, mode and links of the mounted home): labs keep the mounts they started
with, so a home mounted later stays invisible to an already running lab.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from sciplat.config import VolumesConfig
from sciplat.identity.models import User
from sciplat.quotas.errors import QuotaExceededError, StorageLimitError, StorageShrinkError
from sciplat.quotas.models import format_bytes
from sciplat.quotas.storage import ext4, mounts, tree, xfs
from sciplat.quotas.storage.commands import find_tool
from sciplat.quotas.storage.homeimage import HomeImage
from sciplat.volumes import storage
from sciplat.volumes.service import HOME_MODE

log = logging.getLogger(__name__)

#: Callers warn when a home is this full.
WARN_AT = 0.9
#: The smallest home image (ext4 with a journal needs a few MiB of its own).
MIN_IMAGE = 16 * 1024**2
LimitOf = Callable[[User], int | None]


@dataclass(frozen=True)
class StorageStatus:
    """A home's configured ``limit``, the ``capacity`` enforced now (None: nothing is),
    bytes ``used``, and a ``note`` when the limit could not be applied fully yet."""

    user: str
    limit: int | None
    capacity: int | None
    used: int
    note: str = ""


class StorageLimits(ABC):
    """Applies each user's storage quota (``limit_of(user)``, bytes or None) to their home."""

    kind: ClassVar[str]
    enforcing: ClassVar[bool]

    def __init__(self, volumes: VolumesConfig, limit_of: LimitOf, reason: str) -> None:
        self.volumes = volumes
        self.limit_of = limit_of
        self.reason = reason

    def describe(self) -> str:
        state = "enforcing" if self.enforcing else "not enforcing"
        return f"{self.kind} ({state}): {self.reason}"

    def home(self, user: User) -> Path:
        return self.volumes.home_path(user.name)

    @abstractmethod
    def apply(self, user: User) -> StorageStatus:
        """Bring the user's home in line with their quota (before their lab starts).

        Raises:
            QuotaExceededError: the user's storage quota is 0.
            StorageShrinkError: the home holds more than the new limit allows.
            StorageLimitError: the limit could not be set up (message says why).
        """

    @abstractmethod
    def used(self, user: User) -> int:
        """Bytes the user's home takes."""

    def capacity(self, user: User) -> int | None:
        """Bytes the home may hold as enforced now (None: not enforced)."""
        return self.limit_of(user)

    def status(self, user: User) -> StorageStatus:
        return StorageStatus(user.name, self.limit_of(user), self.capacity(user), self.used(user))

    def usage_fraction(self, user: User) -> float | None:
        """How full the home is (1.0: full), or None without a limit."""
        capacity = self.capacity(user)
        if not capacity:
            return None
        return self.used(user) / capacity

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
        log.debug("%s: nothing to release for %s", self.kind, user.name)

    def _allowed(self, user: User) -> int | None:
        limit = self.limit_of(user)
        if limit == 0:
            raise QuotaExceededError(
                "storage", 0, 0, "Ask an administrator for a storage quota (quotas.storage)."
            )
        return limit


class ReportOnly(StorageLimits):
    """Measures homes and warns; cannot stop writes."""

    kind = "report-only"
    enforcing = False

    def apply(self, user: User) -> StorageStatus:
        limit = self._allowed(user)
        status = self.status(user)
        if limit is not None and status.used > limit:
            log.warning(
                "home of %s holds %s, over its quota of %s (not enforced: %s)",
                user.name, format_bytes(status.used), format_bytes(limit), self.reason,
            )  # fmt: skip
        return status

    def used(self, user: User) -> int:
        return tree.measure(self.home(user)).size


class XfsProjectQuota(StorageLimits):
    """Each home is an XFS project (id = the user's UID) with a hard block limit."""

    kind = "xfs-project"
    enforcing = True

    def __init__(
        self, volumes: VolumesConfig, limit_of: LimitOf, reason: str, mount_point: Path
    ) -> None:
        super().__init__(volumes, limit_of, reason)
        self.mount_point = mount_point

    def apply(self, user: User) -> StorageStatus:
        limit = self._allowed(user)
        home = self.home(user)
        storage.ensure_dir(home, HOME_MODE, user.uid, user.gid)
        xfs.apply(self.mount_point, home, user.uid, limit)
        return self.status(user)

    def used(self, user: User) -> int:
        return tree.measure(self.home(user)).size


class LoopImageLimits(StorageLimits):
    """Each limited home is an ext4 image loop-mounted on the home directory."""

    kind = "loop-image"
    enforcing = True

    @property
    def images(self) -> Path:
        return self.volumes.root / "images"

    def image(self, user: User) -> Path:
        return self.images / f"{user.name}.ext4"

    def _home_image(self, user: User) -> HomeImage:
        return HomeImage(user.name, self.home(user), self.image(user))

    def apply(self, user: User) -> StorageStatus:
        limit = self._allowed(user)
        size = None if limit is None else limit // ext4.BLOCK_SIZE * ext4.BLOCK_SIZE
        if size is not None and size < MIN_IMAGE:
            raise StorageLimitError(
                f"the storage quota of {user.name} ({format_bytes(size)}) is below the "
                f"smallest home image ({format_bytes(MIN_IMAGE)}): set quotas storage to at "
                "least 16MiB, or to 0 to allow no storage"
            )
        self.images.mkdir(parents=True, exist_ok=True, mode=0o700)
        home_image, note = self._home_image(user), ""
        with ext4.locked(home_image.image):
            home_image.recover()
            if not home_image.image.exists():
                if size is None:
                    return self.status(user)
                self._enable(user, home_image, size)
            else:
                storage.ensure_dir(home_image.home, HOME_MODE, user.uid, user.gid)
                home_image.mount()
                current = ext4.info(home_image.image).size
                if size is None:
                    note = (f"no storage quota applies to {user.name}: the home keeps its "
                            f"image of {format_bytes(current)}")  # fmt: skip
                elif size != current:
                    note = self._resize(user, home_image, size)
        return replace(self.status(user), note=note)

    def used(self, user: User) -> int:
        home_image = self._home_image(user)
        if not home_image.image.exists():
            return tree.measure(home_image.home).size
        if home_image.mount_entry() is not None:
            return ext4.space(home_image.home).used
        return ext4.info(home_image.image).used

    def capacity(self, user: User) -> int | None:
        home_image = self._home_image(user)
        if not home_image.image.exists():
            return None
        if home_image.mount_entry() is not None:
            return ext4.space(home_image.home).size
        return ext4.info(home_image.image).size

    def usage_fraction(self, user: User) -> float | None:
        home_image = self._home_image(user)
        if home_image.image.exists() and home_image.mount_entry() is not None:
            space = ext4.space(home_image.home)
            return (space.size - space.available) / space.size if space.size else None
        return super().usage_fraction(user)

    def release(self, user: User) -> None:
        home_image = self._home_image(user)
        if not home_image.image.exists():
            return
        with ext4.locked(home_image.image):
            if home_image.mount_entry() is not None:
                ext4.unmount(home_image.home, home_image.image)
            else:
                ext4.detach_unused(home_image.image)

    def _enable(self, user: User, home_image: HomeImage, size: int) -> None:
        """Create the image; move the home's content into it, or mount it on the new home."""
        home = home_image.home
        home_image.mount_entry()  # raises if something else is mounted on the home
        moving = home.is_dir() and any(home.iterdir())
        ext4.create(home_image.image, size, user.uid, user.gid)
        try:
            if moving:
                home_image.move_in()
            else:
                storage.ensure_dir(home, HOME_MODE, user.uid, user.gid)
                ext4.mount(home_image.image, home)
        except BaseException:
            home_image.image.unlink()
            raise
        if moving:
            home_image.finish()
        storage.ensure_dir(home, HOME_MODE, user.uid, user.gid)

    def _resize(self, user: User, home_image: HomeImage, size: int) -> str:
        """Grow or shrink the mounted image; returns a note if it has to wait.

        Raises:
            StorageShrinkError: the home holds more than ``size``.
            StorageLimitError: a tool failed.
        """
        image = home_image.image
        if size > ext4.info(image).size:
            ext4.extend(image, size)
            entry = home_image.mount_entry()
            if entry is not None and ext4.grow_online(entry.source):
                return ""
            return self._offline(user, home_image, lambda: ext4.resize_offline(image, size), size)
        used = ext4.space(home_image.home).used

        def shrink() -> None:
            smallest = ext4.minimum_size(image)
            if smallest > size:
                raise StorageShrinkError(_too_full(user, used, size, smallest))
            ext4.resize_offline(image, size)

        if used >= size:
            raise StorageShrinkError(_too_full(user, used, size))
        return self._offline(user, home_image, shrink, size)

    @staticmethod
    def _offline(user: User, home_image: HomeImage, work: Callable[[], None], size: int) -> str:
        """Unmount, check, run ``work`` and mount again; if a running lab still holds the
        filesystem, mount it back untouched and return a note instead."""
        busy = ext4.unmount(home_image.home, home_image.image)
        try:
            if busy:
                return (
                    f"the home of {user.name} is in use by a running lab, so it changes to "
                    f"{format_bytes(size)} at its next lab start, once its labs have stopped"
                )
            ext4.check(home_image.image)
            work()
            log.info("storage image of %s is now %s", user.name, format_bytes(size))
            return ""
        finally:
            ext4.mount(home_image.image, home_image.home)


def _too_full(user: User, used: int, size: int, smallest: int | None = None) -> str:
    floor = f" (the smallest it can become is {format_bytes(smallest)})" if smallest else ""
    return (
        f"cannot shrink the home of {user.name} to {format_bytes(size)}: it holds "
        f"{format_bytes(used)}{floor}. Nothing was changed: ask {user.name} to delete "
        "files first, or keep a larger storage quota"
    )


def choose_backend(
    as_root: bool, mount: mounts.MountEntry | None, tools: Mapping[str, bool], loop: bool
) -> tuple[str, str]:
    """Which backend to use for a storage root on ``mount``, and why (pure).

    ``tools`` says which commands exist; ``loop`` whether the kernel offers loop devices.
    """
    if not as_root:
        return ("report-only", "sciplat is not running as root: home sizes are measured and "
                               "reported, not enforced")  # fmt: skip
    where = f"{mount.mount_point} ({mount.fstype})" if mount else "the storage root"
    xfs_note = ""
    if mount is not None and mount.fstype == "xfs" and mount.options & xfs.ENFORCING_OPTIONS:
        if tools.get("xfs_quota"):
            return "xfs-project", f"{where} is XFS mounted with project quotas"
        xfs_note = "XFS project quotas are on but xfs_quota is missing (install xfsprogs); "
    missing = sorted({pkg for tool, pkg in ext4.TOOLS.items() if not tools.get(tool)})
    if not missing and loop:
        return ("loop-image", f"{xfs_note}{where} has no project quotas: each limited home is "
                              "an ext4 image loop-mounted on it")  # fmt: skip
    why = f"install {', '.join(missing)}" if missing else "the kernel offers no loop devices"
    return "report-only", f"{xfs_note}cannot enforce storage quotas on {where}: {why}"


def detect_storage_limits(
    volumes: VolumesConfig, as_root: bool, limit_of: LimitOf
) -> StorageLimits:
    """The backend for this host (see :func:`choose_backend`)."""
    mount = mounts.mount_of(volumes.root, mounts.read_mounts())
    tools = {name: find_tool(name) is not None for name in [*ext4.TOOLS, "xfs_quota"]}
    kind, reason = choose_backend(as_root, mount, tools, Path("/dev/loop-control").exists())
    if kind == "xfs-project" and mount is not None:
        return XfsProjectQuota(volumes, limit_of, reason, mount.mount_point)
    if kind == "loop-image":
        return LoopImageLimits(volumes, limit_of, reason)
    return ReportOnly(volumes, limit_of, reason)
