"""ext4 image files on loop devices: create, mount, unmount, grow, shrink, inspect.

A home becomes an image file formatted as ext4 and loop-mounted on the home directory, so the
kernel stops writes with ENOSPC at the image's size. Images are sparse: they take the disk
space their files use, not their size. An image may be mounted in several mount namespaces at
once (every lab has its own copy of the host's mounts), so a loop device that is still busy
after the host's unmount means the filesystem is in use elsewhere, and offline work
(``e2fsck``, offline ``resize2fs``) must wait.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sciplat.quotas.errors import StorageLimitError
from sciplat.quotas.storage.commands import run

BLOCK_SIZE = 4096
MOUNT_OPTIONS = "nosuid,nodev"
#: The tools the loop-image backend needs, and their Debian packages.
TOOLS = {
    "mkfs.ext4": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "resize2fs": "e2fsprogs",
    "dumpe2fs": "e2fsprogs",
    "losetup": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "cp": "coreutils",
}


@dataclass(frozen=True)
class ImageInfo:
    """An ext4 filesystem's size from its superblock (free counts are exact only when it is
    not mounted)."""

    block_count: int
    free_blocks: int
    block_size: int

    @property
    def size(self) -> int:
        return self.block_count * self.block_size

    @property
    def used(self) -> int:
        """Allocated bytes, filesystem metadata (journal, inode tables) included."""
        return (self.block_count - self.free_blocks) * self.block_size


def mkfs_command(image: Path, uid: int, gid: int) -> list[str]:
    """The ``mkfs.ext4`` call for a home image owned by ``uid``:``gid``, without reserved
    blocks (a home is for its user only)."""
    return ["mkfs.ext4", "-q", "-F", "-m", "0", "-b", str(BLOCK_SIZE),
            "-E", f"root_owner={uid}:{gid}", os.fspath(image)]  # fmt: skip


def parse_dumpe2fs(text: str) -> ImageInfo:
    """Read ``dumpe2fs -h`` output.

    Raises:
        StorageLimitError: a field is missing.
    """
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        return ImageInfo(
            block_count=int(fields["Block count"]),
            free_blocks=int(fields["Free blocks"]),
            block_size=int(fields["Block size"]),
        )
    except (KeyError, ValueError) as exc:
        raise StorageLimitError(f"unexpected dumpe2fs output (no {exc})") from exc


@contextlib.contextmanager
def locked(image: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``image`` (a ``.lock`` file next to it) across processes."""
    lock = image.with_suffix(".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def create(image: Path, size: int, uid: int, gid: int) -> None:
    """Make a sparse file of ``size`` bytes and format it as ext4 owned by ``uid``:``gid``.

    Raises:
        StorageLimitError: mkfs.ext4 is missing or failed (the file is removed again).
    """
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    try:
        run(mkfs_command(image, uid, gid), f"format {image} as ext4 (e2fsprogs)")
    except StorageLimitError:
        image.unlink()
        raise


def info(image: Path) -> ImageInfo:
    """The filesystem size and block counts of ``image``.

    Raises:
        StorageLimitError: dumpe2fs failed.
    """
    return parse_dumpe2fs(run(["dumpe2fs", "-h", os.fspath(image)], f"read {image}"))


def loop_devices(image: Path) -> list[str]:
    """The loop devices backed by ``image``."""
    out = run(["losetup", "--list", "--noheadings", "--output", "NAME", "--associated",
               os.fspath(image)], f"list the loop devices of {image}")  # fmt: skip
    return [line.strip() for line in out.splitlines() if line.strip()]


def device_in_use(device: str) -> bool:
    """Whether a filesystem on ``device`` is mounted anywhere, in any mount namespace (an
    exclusive open of a mounted block device fails with EBUSY)."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_EXCL)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return True
        if exc.errno in (errno.ENOENT, errno.ENXIO):
            return False
        raise
    os.close(fd)
    return False


def detach_unused(image: Path) -> list[str]:
    """Detach the loop devices of ``image`` that nothing mounts; return those still in use."""
    busy = []
    for device in loop_devices(image):
        if device_in_use(device):
            busy.append(device)
        else:
            run(["losetup", "--detach", device], f"detach {device}")
    return busy


def mount(image: Path, target: Path) -> None:
    """Mount ``image`` on ``target`` (nosuid, nodev). A loop device that already serves the
    image (a lab still holds the filesystem) is reused: two loop devices on one image would
    be two writers of one filesystem.

    Raises:
        StorageLimitError: mount failed.
    """
    busy = detach_unused(image)
    if busy:
        cmd = ["mount", "-o", MOUNT_OPTIONS, busy[0], os.fspath(target)]
    else:
        cmd = ["mount", "-o", f"loop,{MOUNT_OPTIONS}", os.fspath(image), os.fspath(target)]
    run(cmd, f"mount {image} on {target}")


def unmount(target: Path, image: Path) -> list[str]:
    """Unmount ``target`` and detach ``image``'s loop devices that nothing else mounts;
    return the devices still in use elsewhere (other mount namespaces).

    Raises:
        StorageLimitError: umount failed (e.g. a process of this namespace works there).
    """
    run(["umount", os.fspath(target)], f"unmount {target}")
    return detach_unused(image)


def check(image: Path) -> None:
    """``e2fsck -f -p``: needed before an offline resize.

    Raises:
        StorageLimitError: the filesystem has errors e2fsck cannot fix on its own.
    """
    run(["e2fsck", "-f", "-p", os.fspath(image)], f"check {image}", ok_codes=(0, 1))


def grow_online(device: str) -> bool:
    """Grow the mounted filesystem on ``device`` to its (already enlarged) backing file;
    False when the kernel refuses (online resizing needs CAP_SYS_RESOURCE)."""
    try:
        run(["losetup", "--set-capacity", device], f"refresh the size of {device}")
        run(["resize2fs", device], f"grow the filesystem on {device}")
    except StorageLimitError:
        return False
    return True


def minimum_size(image: Path) -> int:
    """The smallest size ``image`` can shrink to (``resize2fs -P``; unmounted, checked).

    Raises:
        StorageLimitError: resize2fs failed or printed something unexpected.
    """
    out = run(["resize2fs", "-P", os.fspath(image)], f"estimate the minimum size of {image}")
    for line in out.splitlines():
        if "minimum size" in line.lower():
            return int(line.rsplit(":", 1)[1].strip()) * info(image).block_size
    raise StorageLimitError(f"resize2fs -P printed no minimum size for {image}")


def resize_offline(image: Path, size: int) -> None:
    """Resize the unmounted, checked filesystem in ``image`` to ``size`` bytes and make the
    file that size (growing the file first, shrinking it after).

    Raises:
        StorageLimitError: resize2fs refused or failed; the file keeps its old size.
    """
    extend(image, size)
    run(["resize2fs", os.fspath(image), f"{size // 1024}K"], f"resize {image}")
    if size < image.stat().st_size:
        os.truncate(image, size)


@dataclass(frozen=True)
class Space:
    """A mounted filesystem's size, what is allocated, and what its user may still write."""

    size: int
    used: int
    available: int


def space(mount_point: Path) -> Space:
    """``statvfs`` of a mounted filesystem (metadata such as the journal not counted)."""
    st = os.statvfs(mount_point)
    return Space(
        size=st.f_blocks * st.f_frsize,
        used=(st.f_blocks - st.f_bfree) * st.f_frsize,
        available=st.f_bavail * st.f_frsize,
    )


def extend(image: Path, size: int) -> None:
    """Make the file ``image`` at least ``size`` bytes long (sparse)."""
    if image.stat().st_size < size:
        os.truncate(image, size)
