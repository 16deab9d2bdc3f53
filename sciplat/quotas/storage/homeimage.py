"""One home and its ext4 image: is it mounted, mounting it, and moving an existing home's
content into a new image without losing anything.

The move copies into the image mounted on a staging directory, sets the original aside
(renamed next to the home), mounts the image on the home, compares the two trees, and only
then lets the caller delete the original. Any failure puts the original back; a move that a
crash interrupted is finished or undone by :meth:`HomeImage.recover`.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sciplat.quotas.errors import StorageLimitError, StorageShrinkError
from sciplat.quotas.models import format_bytes
from sciplat.quotas.storage import ext4, mounts, tree

log = logging.getLogger(__name__)

#: Created by mkfs.ext4 at the image's root; not part of the home's content.
EXT4_ROOT = frozenset({"lost+found"})


@dataclass(frozen=True)
class HomeImage:
    """The home directory ``home`` of ``owner`` and its image file ``image``."""

    owner: str
    home: Path
    image: Path
    #: how messages name the directory ("the home of alice", "the group directory of astro")
    label: str = ""

    @property
    def described(self) -> str:
        return self.label or f"the home of {self.owner}"

    @property
    def aside(self) -> Path:
        """Where the original home waits during a move (same directory, so a rename)."""
        return self.home.with_name(f".{self.home.name}.pre-image")

    @property
    def staging(self) -> Path:
        return self.image.with_name(f".{self.owner}.staging")

    def mount_entry(self) -> mounts.MountEntry | None:
        """The mount of the image on the home, if mounted.

        Raises:
            StorageLimitError: something else is mounted on the home.
        """
        entry = mounts.mounted_at(self.home)
        if entry is None:
            return None
        if not self.image.exists() or entry.source not in ext4.loop_devices(self.image):
            raise StorageLimitError(
                f"{self.home} has {entry.source} mounted on it, not its storage image "
                f"{self.image}: unmount it first"
            )
        return entry

    def mount(self) -> None:
        """Mount the image on the (existing) home directory, unless it is.

        Raises:
            StorageLimitError: the directory holds files the mount would hide, or mount failed.
        """
        if self.mount_entry() is not None:
            return
        if tree.holds_files(self.home):
            raise StorageLimitError(
                f"{self.home} holds files although its content lives in the image "
                f"{self.image}: mount the image elsewhere, move the files into it, and try again"
            )
        ext4.mount(self.image, self.home)

    def move_in(self) -> None:
        """Copy the home into the new, empty image, swap and verify. On success the original
        is left at :attr:`aside` for :meth:`finish`; on failure it is back in place.

        Raises:
            StorageShrinkError: the home holds more than the image can take.
            StorageLimitError: the home is in use, or the copy failed or differs.
        """
        holders = mounts.processes_inside(self.home)
        if holders:
            raise StorageLimitError(
                f"{self.home} is in use (processes {', '.join(map(str, holders[:5]))}): stop "
                f"the labs using {self.described} and try again"
            )
        content = tree.measure(self.home).size
        self.staging.mkdir(mode=0o700)
        try:
            ext4.mount(self.image, self.staging)
            try:
                room = ext4.space(self.staging).available
                if content > room:
                    raise StorageShrinkError(
                        f"{self.described} holds {format_bytes(content)}, more than "
                        f"its storage quota leaves room for ({format_bytes(room)}). Nothing "
                        "was changed: raise the quota or delete files first"
                    )
                tree.copy_tree(self.home, self.staging)
            finally:
                ext4.unmount(self.staging, self.image)
        finally:
            self.staging.rmdir()
        os.rename(self.home, self.aside)
        try:
            self.home.mkdir(mode=0o700)
            ext4.mount(self.image, self.home)
            problems = tree.compare_trees(self.aside, self.home, EXT4_ROOT)
            if problems:
                raise StorageLimitError(
                    f"the copy of {self.home} into its image differs "
                    f"({'; '.join(problems[:3])}). Nothing was changed"
                )
        except BaseException:
            if mounts.mounted_at(self.home) is not None:
                ext4.unmount(self.home, self.image)
            if self.home.exists():
                self.home.rmdir()
            os.rename(self.aside, self.home)
            raise

    def finish(self) -> None:
        """Delete the original after a successful :meth:`move_in`."""
        shutil.rmtree(self.aside)
        log.info("moved %s into its storage image %s", self.described, self.image)

    def recover(self) -> None:
        """Finish or undo a move that an earlier process did not complete.

        Raises:
            StorageLimitError: both the original and the copy hold data that differ; an
                operator must compare them.
        """
        if self.staging.exists():
            if mounts.mounted_at(self.staging) is not None:
                ext4.unmount(self.staging, self.image)
            self.staging.rmdir()
        if not self.aside.exists():
            return
        if self.mount_entry() is not None:
            problems = tree.compare_trees(self.aside, self.home, EXT4_ROOT)
            if problems:
                raise StorageLimitError(
                    f"an interrupted move of {self.home} into {self.image} left a copy that "
                    f"differs ({'; '.join(problems[:3])}); the original is in {self.aside}: "
                    "compare the two and remove one by hand"
                )
            self.finish()
            return
        try:
            if self.home.exists():
                self.home.rmdir()  # the empty mount point of the interrupted attempt
        except OSError as exc:
            raise StorageLimitError(
                f"an interrupted move of {self.home} into its image left the original in "
                f"{self.aside}, but {self.home} is not empty: merge the two by hand "
                f"({exc.strerror})"
            ) from exc
        os.rename(self.aside, self.home)
        if self.image.exists():
            kept = self.image.with_name(self.image.name + ".interrupted")
            self.image.rename(kept)
            log.warning("interrupted move of %s undone; the partial image is kept as %s",
                        self.home, kept)  # fmt: skip
