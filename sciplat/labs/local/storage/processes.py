"""Starting, finding and signalling lab processes on this host."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def start_launcher(launch: dict[str, Any], log_path: Path) -> subprocess.Popen[bytes]:
    """Start the launcher in a new session (so no signal to the hub reaches the lab) with
    output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sciplat.labs.local.storage.launcher"],
            stdin=subprocess.PIPE,
            stdout=fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    finally:
        os.close(fd)
    if proc.stdin is None:
        raise RuntimeError("the launcher has no stdin pipe")
    proc.stdin.write(json.dumps(launch).encode())
    proc.stdin.close()
    return proc


def start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if gone or a
    zombie. Together with the pid it names a process even after pids wrap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (the lab's session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def signal_process(pid: int, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file (empty if missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
