"""The one interface every lab backend implements (local processes, Kubernetes, in-process).

Contract, after JupyterHub's Spawner:

- ``start`` returns once the lab's process (or pod) exists, with the :class:`LabState` to
  persist; it reports steps through ``progress``. Readiness (the server answering HTTP) is
  checked by the lab service, the same way for every backend.
- ``poll`` returns None while the lab runs, else an exit status (0 if unknown). It works
  from a state loaded after a hub restart.
- ``stop`` ends the lab and everything it started and releases its resources; stopping a
  lab that is already gone is not an error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from sciplat.labs.models import LabSpec, LabState, LabUsage

Progress = Callable[[int, str], None]


class LabBackend(ABC):
    name: str
    #: True when labs see the platform host's directories, so the lab service provisions
    #: homes, applies storage limits and links tutorials on the host before a start; False
    #: when the backend's own volumes (Kubernetes PVCs, NFS) hold them.
    host_storage: bool = True

    @abstractmethod
    async def start(self, spec: LabSpec, progress: Progress) -> LabState:
        """Start the lab described by ``spec``.

        Raises:
            LabError: it could not be started; the message says why and what to do.
        """

    @abstractmethod
    async def poll(self, state: LabState) -> int | None:
        """None while running, else the exit status (0 if unknown)."""

    @abstractmethod
    async def stop(self, state: LabState, now: bool = False) -> None:
        """Stop the lab and all its processes; idempotent."""

    @abstractmethod
    def usage(self, state: LabState) -> LabUsage:
        """Current resource use (zeros where the backend cannot tell)."""

    def log_tail(self, state: LabState, lines: int = 20) -> str:
        """The last lines of the lab's own log, for error pages."""
        return ""
