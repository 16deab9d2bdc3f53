"""The local lab backend: one process tree per lab, as the user, in its own cgroup."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sciplat.errors import LabError
from sciplat.labs.backend import LabBackend, Progress
from sciplat.labs.local.storage import processes
from sciplat.labs.local.storage.cgroups import CgroupDriver
from sciplat.labs.local.storage.prefork import (
    PreforkFailed,
    PreforkServers,
    PreforkUnavailable,
    lab_environment,
)
from sciplat.labs.models import LabSpec, LabState, LabUsage

log = logging.getLogger(__name__)

#: /tmp and /dev/shm are tmpfs inside the lab: their pages count against the memory limit,
#: and this caps each at a quarter of it.
TMP_FRACTION = 4


def launch_description(spec: LabSpec, cgroup_procs: list[Path]) -> dict[str, Any]:
    """What the launcher is told (pure; tested against expected output)."""
    return {
        "isolate": spec.isolate,
        "cgroup_procs": [str(p) for p in cgroup_procs],
        "private_tmp": spec.isolate,
        "tmp_size": spec.limits.memory // TMP_FRACTION,
        "uid": spec.uid,
        "gid": spec.gid,
        "groups": [spec.gid, *spec.groups],
        "home": str(spec.home),
        "homes": str(spec.home.parent),
        "umask": 0o077,
        "env": spec.env,
        "command": list(spec.command),
    }


class LocalBackend(LabBackend):
    """Labs as local process trees. With ``cgroups`` None (not root) labs run unconfined.

    With ``prefork`` set, an environment's standard lab server is forked from that
    environment's resident parent (ready in a fraction of the plain start's time); any other
    command, or no parent ready, takes the plain launcher.
    """

    name = "local"

    def __init__(
        self,
        cgroups: CgroupDriver | None,
        stop_grace: float = 10.0,
        prefork: PreforkServers | None = None,
    ) -> None:
        self.cgroups = cgroups
        self.stop_grace = stop_grace
        self.prefork = prefork
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    async def start(self, spec: LabSpec, progress: Progress) -> LabState:
        cgroup = ""
        procs: list[Path] = []
        if spec.isolate and self.cgroups is not None:
            progress(40, f"Limits: {spec.limits.cpu:g} CPU, {spec.limits.memory / 2**30:.1f} GiB "
                         f"memory, {spec.limits.pids} processes")  # fmt: skip
            if self.cgroups.pids(spec.slug):
                # leftovers of a lab whose hub lost track of it: never run two at once
                self.cgroups.kill_all(spec.slug)
            try:
                self.cgroups.create(spec.slug, spec.limits)
            except OSError as exc:
                raise LabError(f"cannot set up resource limits for the lab: {exc}") from exc
            cgroup, procs = spec.slug, self.cgroups.procs_files(spec.slug)
        launch = launch_description(spec, procs)
        pid = await self._forked(spec, launch)
        how = "pre-forked" if pid is not None else "launcher"
        child = None
        if pid is None:
            child = processes.start_launcher(launch, spec.log_path)
            self._children[child.pid] = child
            pid = child.pid
        started = processes.start_time(pid)
        for _ in range(100):
            if started is not None or (child is not None and child.poll() is not None):
                break
            await asyncio.sleep(0.005)
            started = processes.start_time(pid)
        progress(50, "Lab process started" + (" (pre-forked)" if how == "pre-forked" else ""))
        return LabState(
            backend=self.name,
            slug=spec.slug,
            pid=pid,
            start_time=started or 0,
            ip=spec.ip,
            port=spec.port,
            log_path=str(spec.log_path),
            cgroup=cgroup,
            environment=spec.environment,
            size=spec.size,
            started=time.time(),
            extra={"started_by": how},
        )

    async def _forked(self, spec: LabSpec, launch: dict[str, Any]) -> int | None:
        """The pid of a lab forked from its environment's parent, or None: take the plain
        launcher (no parent yet, then one is started for the next lab; not a lab server).

        Raises:
            LabError: the forked child could not become the lab (the launcher would fail alike).
        """
        env = lab_environment(spec.command) if self.prefork is not None else None
        if self.prefork is None or env is None:
            return None
        try:
            return await asyncio.to_thread(self.prefork.fork_lab, env, launch, spec.log_path)
        except PreforkUnavailable as exc:
            log.info("lab %s: plain start: %s", spec.slug, exc)
        except PreforkFailed as exc:
            raise LabError(f"the lab could not be set up: {exc}",
                           log_tail=processes.tail(spec.log_path, 20)) from exc  # fmt: skip
        except OSError as exc:
            log.warning("lab %s: plain start, the pre-forked server failed: %s", spec.slug, exc)
        if spec.isolate and self.cgroups is not None and self.cgroups.pids(spec.slug):
            # a child that never answered: never two labs at once
            await asyncio.to_thread(self.cgroups.kill_all, spec.slug)
        return None

    def _alive(self, state: LabState) -> bool:
        proc = self._children.get(state.pid)
        if proc is not None and proc.poll() is not None:
            return False
        return processes.start_time(state.pid) == state.start_time != 0

    async def poll(self, state: LabState) -> int | None:
        if self._alive(state):
            return None
        proc = self._children.get(state.pid)
        code = proc.returncode if proc is not None else None
        return 0 if code is None else (code if code >= 0 else 128 - code)

    async def stop(self, state: LabState, now: bool = False) -> None:
        if self._alive(state):
            processes.signal_process(state.pid, signal.SIGTERM)
            deadline = time.monotonic() + (0 if now else self.stop_grace)
            # no event tells that a pid exited: poll
            while self._alive(state) and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if not state.cgroup:
                processes.signal_group(state.pid, signal.SIGKILL)
        if state.cgroup and self.cgroups is not None:
            if not await asyncio.to_thread(self.cgroups.kill_all, state.cgroup):
                log.error("lab %s: processes survived SIGKILL in its cgroup", state.slug)
            self.cgroups.remove(state.cgroup)
        proc = self._children.pop(state.pid, None)
        if proc is not None:
            proc.poll()

    def usage(self, state: LabState) -> LabUsage:
        if state.cgroup and self.cgroups is not None:
            return self.cgroups.usage(state.cgroup)
        return LabUsage()

    def log_tail(self, state: LabState, lines: int = 20) -> str:
        return processes.tail(Path(state.log_path), lines)
