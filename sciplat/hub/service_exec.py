"""``python -m sciplat.hub.service_exec CMD...``: run a hub-managed service so that it ends
with the hub, even when the hub is killed hard: the kernel sends SIGTERM to this process when
its parent dies (PR_SET_PDEATHSIG, kept across exec), and the service's command is exec'd in
place. Without it a hub restarted by the supervisor would find the old service on its port."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    if not argv:
        print("usage: python -m sciplat.hub.service_exec COMMAND [ARG...]", file=sys.stderr)
        raise SystemExit(2)
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the hub died before the call above
        raise SystemExit(0)
    os.execvp(argv[0], argv)  # noqa: S606 - the hub's own service command, no shell


if __name__ == "__main__":
    main(sys.argv[1:])
