"""Per-lab cgroups on cgroup v1 (memory, cpu, cpuacct, pids hierarchies) or v2 (unified).

One lab, one cgroup named by its slug below a platform parent (``sciplat`` by default).
The launcher writes its own pid into :meth:`CgroupDriver.procs_files` before it drops
privileges, so everything the lab starts is inside.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from sciplat.labs.models import LabLimits, LabUsage

CFS_PERIOD_US = 100_000
#: The platform's parent cgroup weighs like this many ordinary processes: all labs together
#: must not count as one process against the host's other work (v1 cpu.shares, v2 cpu.weight).
PARENT_SHARES_V1 = 1024 * 64
PARENT_WEIGHT_V2 = 6400
_V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _keyed(path: Path, key: str) -> int:
    """Value of ``key`` in a flat-keyed file such as memory.events or cpu.stat."""
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
    except (OSError, ValueError):
        pass
    return 0


class CgroupDriver:
    """Creates, measures, empties and removes lab cgroups."""

    def __init__(self, version: int, root: Path, parent: str) -> None:
        self.version = version
        self.root = root
        self.parent = parent

    # -- layout (pure) ----------------------------------------------------------------------
    def dirs(self, name: str) -> dict[str, Path]:
        """The lab cgroup's directory per controller ("unified" on v2)."""
        if self.version == 2:
            return {"unified": self.root / self.parent / name}
        return {c: self.root / c / self.parent / name for c in _V1_CONTROLLERS}

    def limit_writes(self, name: str, limits: LabLimits) -> list[tuple[Path, str]]:
        """The files to write, in order, to apply ``limits``."""
        d = self.dirs(name)
        quota = str(max(1000, int(limits.cpu * CFS_PERIOD_US)))
        if self.version == 2:
            u = d["unified"]
            return [
                (u / "memory.max", str(limits.memory)),
                (u / "memory.swap.max", "0"),
                (u / "cpu.max", f"{quota} {CFS_PERIOD_US}"),
                (u / "pids.max", str(limits.pids)),
            ]
        return [
            (d["memory"] / "memory.limit_in_bytes", str(limits.memory)),
            (d["memory"] / "memory.memsw.limit_in_bytes", str(limits.memory)),
            (d["cpu"] / "cpu.cfs_period_us", str(CFS_PERIOD_US)),
            (d["cpu"] / "cpu.cfs_quota_us", quota),
            (d["pids"] / "pids.max", str(limits.pids)),
        ]

    def procs_files(self, name: str) -> list[Path]:
        return [p / "cgroup.procs" for p in self.dirs(name).values()]

    # -- operations ---------------------------------------------------------------------------
    def create(self, name: str, limits: LabLimits) -> None:
        """Create the lab's cgroup(s) and apply ``limits`` (a leftover one is reused)."""
        if self.version == 2:
            parent = self.root / self.parent
            parent.mkdir(exist_ok=True)
            for p in (self.root, parent):
                with contextlib.suppress(OSError):
                    _write(p / "cgroup.subtree_control", "+memory +cpu +pids")
        for path in self.dirs(name).values():
            path.mkdir(parents=True, exist_ok=True)
        self._weigh_parent()
        writes = self.limit_writes(name, limits)
        if self.version == 1:
            memsw = self.dirs(name)["memory"] / "memory.memsw.limit_in_bytes"
            if not memsw.exists():
                # swap accounting is off in this kernel: memory.limit_in_bytes still holds
                writes = [w for w in writes if w[0] != memsw]
            elif limits.memory > _read_int(memsw):
                # v1 refuses memory.limit_in_bytes above memsw: raise memsw first when growing
                writes.sort(key=lambda w: w[0] != memsw)
        for path, value in writes:
            _write(path, value)

    def _weigh_parent(self) -> None:
        if self.version == 2:
            target, value = self.root / self.parent / "cpu.weight", str(PARENT_WEIGHT_V2)
        else:
            target, value = self.root / "cpu" / self.parent / "cpu.shares", str(PARENT_SHARES_V1)
        with contextlib.suppress(OSError):
            if target.read_text().strip() != value:
                _write(target, value)

    def pids(self, name: str) -> list[int]:
        found: set[int] = set()
        for f in self.procs_files(name):
            with contextlib.suppress(OSError):
                found.update(int(x) for x in f.read_text().split())
        return sorted(found)

    def usage(self, name: str) -> LabUsage:
        d = self.dirs(name)
        if self.version == 2:
            u = d["unified"]
            return LabUsage(
                memory=_read_int(u / "memory.current"),
                cpu_seconds=_keyed(u / "cpu.stat", "usage_usec") / 1e6,
                pids=_read_int(u / "pids.current"),
                oom_kills=_keyed(u / "memory.events", "oom_kill"),
            )
        return LabUsage(
            memory=_read_int(d["memory"] / "memory.usage_in_bytes"),
            cpu_seconds=_read_int(d["cpuacct"] / "cpuacct.usage") / 1e9,
            pids=_read_int(d["pids"] / "pids.current"),
            oom_kills=_keyed(d["memory"] / "memory.oom_control", "oom_kill"),
        )

    def signal_all(self, name: str, sig: int) -> int:
        """Send ``sig`` to every process in the cgroup; returns how many were signalled."""
        count = 0
        for pid in self.pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                count += 1
        return count

    def kill_all(self, name: str, timeout: float = 5.0) -> bool:
        """SIGKILL everything inside until the cgroup is empty; True if it emptied."""
        kill_file = self.dirs(name).get("unified", Path("/nonexistent")) / "cgroup.kill"
        deadline = time.monotonic() + timeout
        while self.pids(name):
            if kill_file.exists():
                with contextlib.suppress(OSError):
                    _write(kill_file, "1")
            else:
                self.signal_all(name, signal.SIGKILL)
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def remove(self, name: str) -> None:
        """Remove the lab's (empty) cgroup directories."""
        for path in self.dirs(name).values():
            with contextlib.suppress(FileNotFoundError):
                path.rmdir()

    def exists(self, name: str) -> bool:
        return any(p.exists() for p in self.dirs(name).values())


def detect(parent: str, root: Path = Path("/sys/fs/cgroup")) -> CgroupDriver | None:
    """The host's cgroup driver, or None where we cannot manage cgroups (not root, no
    writable hierarchy)."""
    if os.geteuid() != 0:
        return None
    if (root / "cgroup.controllers").exists():
        controllers = (root / "cgroup.controllers").read_text().split()
        if {"memory", "cpu", "pids"} <= set(controllers):
            return CgroupDriver(2, root, parent)
        return None
    if all((root / c).is_dir() for c in _V1_CONTROLLERS) and os.access(root / "memory", os.W_OK):
        return CgroupDriver(1, root, parent)
    return None
