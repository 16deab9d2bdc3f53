"""XFS project quotas: a home becomes a project (id = the user's UID) with a hard block limit.

Used where the storage root lies on XFS mounted with ``prjquota`` (the usual production
case). The commands are built by pure functions so they can be checked without XFS.
"""

from __future__ import annotations

import fcntl
import os
import struct
from pathlib import Path

from sciplat.quotas.errors import StorageLimitError
from sciplat.quotas.storage.commands import run

#: _IOR('X', 31, struct fsxattr): read a file's extended attributes, project id included.
FS_IOC_FSGETXATTR = 0x801C581F
_FSXATTR = struct.Struct("=IIIII8x")
#: Mount options under which XFS enforces project quotas.
ENFORCING_OPTIONS = frozenset({"prjquota", "pquota", "pqenforce"})


def _checked(path: Path) -> str:
    text = os.fspath(path)
    if any(c.isspace() for c in text):
        # xfs_quota splits its -c argument on white space
        raise StorageLimitError(
            f"{text} contains white space, which xfs_quota cannot take: choose volumes.home "
            "and volumes.root without spaces"
        )
    return text


def setup_command(mount_point: Path, directory: Path, project_id: int) -> list[str]:
    """Mark every file below ``directory`` as belonging to project ``project_id`` (and set
    the inherit flag so new files do too).

    Raises:
        StorageLimitError: a path contains white space.
    """
    return ["xfs_quota", "-x", "-c", f"project -s -p {_checked(directory)} {project_id}",
            _checked(mount_point)]  # fmt: skip


def limit_command(mount_point: Path, project_id: int, limit: int | None) -> list[str]:
    """Set project ``project_id``'s hard block limit to ``limit`` bytes (None: no limit,
    which XFS writes as 0).

    Raises:
        StorageLimitError: the mount point contains white space.
    """
    bhard = 0 if limit is None else max(limit, 1)
    return ["xfs_quota", "-x", "-c", f"limit -p bhard={bhard} {project_id}",
            _checked(mount_point)]  # fmt: skip


def project_id(path: Path) -> int:
    """The project id of ``path`` (0 when none; works on ext4 as well as XFS).

    Raises:
        OSError: the filesystem does not support the call.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        raw = fcntl.ioctl(fd, FS_IOC_FSGETXATTR, bytes(_FSXATTR.size))
    finally:
        os.close(fd)
    return int(_FSXATTR.unpack(raw)[3])


def apply(mount_point: Path, directory: Path, project: int, limit: int | None) -> None:
    """Make ``directory`` project ``project`` (only the first time: tagging walks the tree)
    and set its limit.

    Raises:
        StorageLimitError: xfs_quota failed or a path contains white space.
    """
    if project_id(directory) != project:
        run(setup_command(mount_point, directory, project), f"set up a project on {directory}")
    run(limit_command(mount_point, project, limit), f"limit the size of {directory}")
