"""The kernel's view of mounts and processes: /proc/self/mountinfo and /proc/<pid>/cwd."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    """One mount: where, which filesystem type, from which source, with which options
    (the mount's own and the filesystem's, together)."""

    mount_point: Path
    fstype: str
    source: str
    options: frozenset[str]


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Parse /proc/self/mountinfo (see proc(5)); malformed lines are skipped."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        sep = fields.index("-")
        if len(fields) < sep + 3:
            continue
        super_options = fields[sep + 3].split(",") if len(fields) > sep + 3 else []
        options = fields[5].split(",") + super_options
        entries.append(
            MountEntry(
                mount_point=Path(_unescape(fields[4])),
                fstype=fields[sep + 1],
                source=_unescape(fields[sep + 2]),
                options=frozenset(options),
            )
        )
    return entries


def read_mounts() -> list[MountEntry]:
    """The mounts this process sees."""
    with open("/proc/self/mountinfo") as f:
        return parse_mountinfo(f.read())


def mount_of(path: Path, entries: Iterable[MountEntry]) -> MountEntry | None:
    """The mount ``path`` lives on (the last of the longest matching mount points)."""
    target = Path(os.path.realpath(path))
    best: MountEntry | None = None
    for entry in entries:
        if target.is_relative_to(entry.mount_point) and (
            best is None or len(entry.mount_point.parts) >= len(best.mount_point.parts)
        ):
            best = entry
    return best


def mounted_at(path: Path, entries: Iterable[MountEntry] | None = None) -> MountEntry | None:
    """The topmost mount whose mount point is exactly ``path``, if any."""
    target = Path(os.path.realpath(path))
    found = None
    for entry in read_mounts() if entries is None else entries:
        if entry.mount_point == target:
            found = entry
    return found


def processes_inside(path: Path) -> list[int]:
    """Pids whose working or root directory is ``path`` or below (best effort: processes
    that vanish or hide their links are skipped)."""
    target = os.path.realpath(path)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        for link in ("cwd", "root"):
            try:
                where = os.readlink(f"/proc/{name}/{link}")
            except OSError:
                continue
            if where == target or where.startswith(target + "/"):
                found.append(int(name))
                break
    return found


def processes_with_group(gid: int) -> list[int]:
    """Pids of processes holding ``gid`` as their real, effective or a supplementary group
    (other than this process): those that can write a directory of mode 2770 owned by it."""
    found = []
    own = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == own:
            continue
        try:
            with open(f"/proc/{name}/status", encoding="ascii", errors="replace") as status:
                lines = [line for line in status if line.startswith(("Gid:", "Groups:"))]
        except OSError:
            continue
        ids = {int(word) for line in lines for word in line.split()[1:] if word.isdigit()}
        if gid in ids:
            found.append(int(name))
    return found
