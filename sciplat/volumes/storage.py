"""Filesystem operations on homes and group directories, safe against symlink tricks.

Everything inside a user's home is done relative to a directory descriptor opened with
``O_NOFOLLOW``, so a user who replaces ``~/groups`` with a symlink to ``/etc`` makes the
platform refuse, not write there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from sciplat.errors import StorageError


def ensure_dir(path: Path, mode: int, uid: int | None, gid: int | None) -> bool:
    """Create ``path`` (parents 0755) with ``mode`` and owner; fix the top directory's owner and
    mode if it exists. Returns True if it was created."""
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        path.mkdir(mode=0o700)
        created = True
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{path} should be a directory but is not; move it away")
    if uid is not None and gid is not None and (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != mode or created:
        os.chmod(path, mode)  # after chown, which clears the setgid bit
    return created


def untraversable_ancestor(path: Path) -> Path | None:
    """The first directory above ``path`` that other users cannot enter, if any."""
    for parent in [*reversed(path.absolute().parents), path.absolute()]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


@contextlib.contextmanager
def open_dir(path: Path) -> Iterator[int]:
    """A descriptor of directory ``path``, refusing a symlink at its last component."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_subdir(parent_fd: int, name: str, uid: int | None, gid: int | None) -> int:
    """Open (creating it 0755, owned by uid:gid) directory ``name`` below ``parent_fd``.

    Raises:
        StorageError: ``name`` exists and is not a plain directory.
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o755, dir_fd=parent_fd)
        if uid is not None and gid is not None:
            os.chown(name, uid, gid, dir_fd=parent_fd, follow_symlinks=False)
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise StorageError(
                f"{name!r} in the home is not a directory; move it away so the platform can "
                "link group and shared directories there"
            ) from exc
        raise


def set_link(dir_fd: int, name: str, target: Path) -> None:
    """Point symlink ``name`` at ``target``; leave a non-link of that name alone."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        os.symlink(target, name, dir_fd=dir_fd)
        return
    if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=dir_fd) != str(target):
        os.unlink(name, dir_fd=dir_fd)
        os.symlink(target, name, dir_fd=dir_fd)


def prune_links(dir_fd: int, keep: set[str], under: Path) -> None:
    """Remove symlinks into ``under`` whose names are not in ``keep`` (never files)."""
    for name in os.listdir(dir_fd):
        st = os.lstat(name, dir_fd=dir_fd)
        if stat.S_ISLNK(st.st_mode) and name not in keep:
            target = os.readlink(name, dir_fd=dir_fd)
            if Path(target).is_relative_to(under):
                os.unlink(name, dir_fd=dir_fd)


def exists_nofollow(dir_fd: int, name: str) -> bool:
    """Whether ``name`` exists below ``dir_fd`` (a dangling symlink counts)."""
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def is_root() -> bool:
    return os.geteuid() == 0
