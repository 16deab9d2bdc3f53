"""Storage limits on homes and group directories: three backends, chosen once at start.

- :class:`XfsProjectQuota`: the storage root is on XFS mounted with ``prjquota``; each home
  and group directory is a project with a hard limit (the usual production host).
- :class:`~sciplat.volumes.loop_images.LoopImageLimits`: otherwise, as root, each limited
  directory is an ext4 image file loop-mounted on it. The kernel stops writes with ENOSPC at
  the image's size. Works without kernel quota support.
- :class:`ReportOnly`: not root (or the tools are missing): directories are measured and
  reported, nothing is enforced.

:func:`detect_storage_limits` picks one and says why (:meth:`StorageLimits.describe`).
Call :meth:`StorageLimits.apply` before a user's lab starts (then ``VolumeService.provision``,
which repairs owner, mode and links of the mounted home): labs keep the mounts they started
with, so a home mounted later stays invisible to an already running lab.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from sciplat.config import VolumesConfig
from sciplat.quotas.models import format_bytes
from sciplat.quotas.storage import ext4, mounts, tree, xfs
from sciplat.quotas.storage.commands import find_tool
from sciplat.volumes import storage
from sciplat.volumes.limits import (
    WARN_AT,
    GroupLimitOf,
    LimitOf,
    StorageLimits,
    StorageStatus,
    Volume,
)
from sciplat.volumes.loop_images import MIN_IMAGE, LoopImageLimits

__all__ = [
    "MIN_IMAGE",
    "WARN_AT",
    "LoopImageLimits",
    "ReportOnly",
    "StorageLimits",
    "StorageStatus",
    "XfsProjectQuota",
    "choose_backend",
    "detect_storage_limits",
]

log = logging.getLogger(__name__)


class ReportOnly(StorageLimits):
    """Measures directories and warns; cannot stop writes."""

    kind = "report-only"
    enforcing = False

    def apply_volume(self, volume: Volume) -> StorageStatus:
        status = self.volume_status(volume)
        if volume.limit is not None and status.used > volume.limit:
            log.warning(
                "%s holds %s, over its quota of %s (not enforced: %s)",
                volume.label, format_bytes(status.used), format_bytes(volume.limit), self.reason,
            )  # fmt: skip
        return status

    def volume_used(self, volume: Volume) -> int:
        return tree.measure(volume.path).size


class XfsProjectQuota(StorageLimits):
    """Each home and group directory is an XFS project (id = the UID or GID) with a hard
    block limit."""

    kind = "xfs-project"
    enforcing = True

    def __init__(
        self,
        volumes: VolumesConfig,
        limit_of: LimitOf,
        reason: str,
        mount_point: Path,
        group_limit_of: GroupLimitOf | None = None,
    ) -> None:
        super().__init__(volumes, limit_of, reason, group_limit_of)
        self.mount_point = mount_point

    def apply_volume(self, volume: Volume) -> StorageStatus:
        storage.ensure_dir(volume.path, volume.mode, volume.uid, volume.gid)
        xfs.apply(self.mount_point, volume.path, volume.project, volume.limit)
        return self.volume_status(volume)

    def volume_used(self, volume: Volume) -> int:
        return tree.measure(volume.path).size


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
    volumes: VolumesConfig,
    as_root: bool,
    limit_of: LimitOf,
    group_limit_of: GroupLimitOf | None = None,
) -> StorageLimits:
    """The backend for this host (see :func:`choose_backend`)."""
    mount = mounts.mount_of(volumes.root, mounts.read_mounts())
    tools = {name: find_tool(name) is not None for name in [*ext4.TOOLS, "xfs_quota"]}
    kind, reason = choose_backend(as_root, mount, tools, Path("/dev/loop-control").exists())
    if kind == "xfs-project" and mount is not None:
        return XfsProjectQuota(volumes, limit_of, reason, mount.mount_point, group_limit_of)
    if kind == "loop-image":
        return LoopImageLimits(volumes, limit_of, reason, group_limit_of)
    return ReportOnly(volumes, limit_of, reason, group_limit_of)
