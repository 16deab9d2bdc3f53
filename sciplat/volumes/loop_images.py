"""The loop-image backend: each limited directory is an ext4 image loop-mounted on it.

Homes use ``<volumes.root>/images/<user>.ext4``, group directories
``<volumes.root>/images/groups/<group>.ext4`` (sparse files); the kernel stops writes with
ENOSPC at the image's size, without any quota support in the kernel.

Labs keep the mounts they started with (each has a private mount namespace), so mounting an
image on a directory that a running lab already shows would split it: that lab would keep
writing to the directory underneath, which nobody else sees. A home is only used by its
owner's labs, which start after their own ``apply``; a group directory is shared, so its image
is created, mounted or resized only while no process holds the group's GID, and otherwise at
a later member's lab start (the status note says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from sciplat.identity.models import User
from sciplat.quotas.errors import StorageLimitError, StorageShrinkError
from sciplat.quotas.models import format_bytes
from sciplat.quotas.storage import ext4, mounts, tree
from sciplat.quotas.storage.homeimage import HomeImage
from sciplat.volumes import storage
from sciplat.volumes.limits import StorageLimits, StorageStatus, Volume

log = logging.getLogger(__name__)

#: The smallest image (ext4 with a journal needs a few MiB of its own).
MIN_IMAGE = 16 * 1024**2


class LoopImageLimits(StorageLimits):
    """Each limited home or group directory is an ext4 image loop-mounted on it."""

    kind = "loop-image"
    enforcing = True

    @property
    def images(self) -> Path:
        return self.volumes.root / "images"

    def image_of(self, volume: Volume) -> Path:
        where = self.images if volume.kind == "home" else self.images / "groups"
        return where / f"{volume.name}.ext4"

    def image(self, user: User) -> Path:
        """The image file of the user's home."""
        return self.image_of(self.home_volume(user))

    def _image(self, volume: Volume) -> HomeImage:
        return HomeImage(volume.name, volume.path, self.image_of(volume), volume.label)

    def _ensure(self, volume: Volume) -> None:
        storage.ensure_dir(volume.path, volume.mode, volume.uid, volume.gid)

    def apply_volume(self, volume: Volume) -> StorageStatus:
        limit = volume.limit
        size = None if limit is None else limit // ext4.BLOCK_SIZE * ext4.BLOCK_SIZE
        if size is not None and size < MIN_IMAGE:
            key = "storage" if volume.kind == "home" else "group_storage"
            raise StorageLimitError(
                f"the {key} quota of {volume.name} ({format_bytes(size)}) is below the "
                f"smallest storage image ({format_bytes(MIN_IMAGE)}): set quotas {key} to at "
                "least 16MiB, or to 0 to allow no storage"
            )
        image = self._image(volume)
        image.image.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        note = ""
        with ext4.locked(image.image):
            image.recover()
            mounted = image.mount_entry() is not None
            if not image.image.exists() and size is None:
                return self.volume_status(volume)
            if not mounted and (busy := self._busy(volume)):
                return replace(self.volume_status(volume), note=busy)
            if not image.image.exists():
                assert size is not None  # noqa: S101 - checked above
                self._enable(volume, image, size)
            else:
                self._ensure(volume)
                image.mount()
                current = ext4.info(image.image).size
                if size is None:
                    note = (f"no storage quota applies to {volume.label}: it keeps its "
                            f"image of {format_bytes(current)}")  # fmt: skip
                elif size != current:
                    note = self._resize(volume, image, size)
            self._ensure(volume)
        return replace(self.volume_status(volume), note=note)

    def _busy(self, volume: Volume) -> str:
        """Why a group directory's mounts cannot change now ("" if they can)."""
        if volume.kind != "group":
            return ""
        holders = mounts.processes_with_group(volume.gid)
        if not holders:
            return ""
        return (
            f"The size limit of {volume.label} ({format_bytes(volume.limit or 0)}) takes "
            f"effect once no lab of its members runs ({len(holders)} processes of members "
            "are running); until then it is not enforced."
        )

    def volume_used(self, volume: Volume) -> int:
        image = self._image(volume)
        if not image.image.exists():
            return tree.measure(image.home).size
        if image.mount_entry() is not None:
            return ext4.space(image.home).used
        return ext4.info(image.image).used

    def volume_capacity(self, volume: Volume) -> int | None:
        image = self._image(volume)
        if not image.image.exists():
            return None
        if image.mount_entry() is not None:
            return ext4.space(image.home).size
        return ext4.info(image.image).size

    def volume_fraction(self, volume: Volume) -> float | None:
        image = self._image(volume)
        if image.image.exists() and image.mount_entry() is not None:
            space = ext4.space(image.home)
            return (space.size - space.available) / space.size if space.size else None
        return super().volume_fraction(volume)

    def release_volume(self, volume: Volume) -> None:
        image = self._image(volume)
        if not image.image.exists():
            return
        with ext4.locked(image.image):
            if image.mount_entry() is not None:
                ext4.unmount(image.home, image.image)
            else:
                ext4.detach_unused(image.image)

    def _enable(self, volume: Volume, image: HomeImage, size: int) -> None:
        """Create the image; move the directory's content into it, or mount it on the new
        directory."""
        path = image.home
        image.mount_entry()  # raises if something else is mounted there
        moving = path.is_dir() and any(path.iterdir())
        ext4.create(image.image, size, volume.uid, volume.gid)
        try:
            if moving:
                image.move_in()
            else:
                self._ensure(volume)
                ext4.mount(image.image, path)
        except BaseException:
            image.image.unlink()
            raise
        if moving:
            image.finish()
        self._ensure(volume)

    def _resize(self, volume: Volume, image: HomeImage, size: int) -> str:
        """Grow or shrink the mounted image; returns a note if it has to wait.

        Raises:
            StorageShrinkError: the directory holds more than ``size``.
            StorageLimitError: a tool failed.
        """
        file = image.image
        if size > ext4.info(file).size:
            ext4.extend(file, size)
            entry = image.mount_entry()
            if entry is not None and ext4.grow_online(entry.source):
                return ""
            return self._offline(volume, image, lambda: ext4.resize_offline(file, size), size)
        used = ext4.space(image.home).used

        def shrink() -> None:
            smallest = ext4.minimum_size(file)
            if smallest > size:
                raise StorageShrinkError(_too_full(volume, used, size, smallest))
            ext4.resize_offline(file, size)

        if used >= size:
            raise StorageShrinkError(_too_full(volume, used, size))
        return self._offline(volume, image, shrink, size)

    @staticmethod
    def _offline(volume: Volume, image: HomeImage, work: Callable[[], None], size: int) -> str:
        """Unmount, check, run ``work`` and mount again; if a running lab still holds the
        filesystem, mount it back untouched and return a note instead."""
        busy = ext4.unmount(image.home, image.image)
        try:
            if busy:
                return (
                    f"{volume.label} is in use by a running lab, so it changes to "
                    f"{format_bytes(size)} at a later lab start, once those labs have stopped"
                )
            ext4.check(image.image)
            work()
            log.info("storage image of %s is now %s", volume.label, format_bytes(size))
            return ""
        finally:
            ext4.mount(image.image, image.home)


def _too_full(volume: Volume, used: int, size: int, smallest: int | None = None) -> str:
    floor = f" (the smallest it can become is {format_bytes(smallest)})" if smallest else ""
    who = f"ask {volume.name} to delete files" if volume.kind == "home" else (
        f"ask the members of {volume.name} to delete files")  # fmt: skip
    return (
        f"cannot shrink {volume.label} to {format_bytes(size)}: it holds "
        f"{format_bytes(used)}{floor}. Nothing was changed: {who} first, or keep a larger "
        "quota"
    )
