"""The lab launcher: runs as root for a moment, then becomes the user and execs the server.

Started by the local backend as ``python -m sciplat.labs.local.storage.launcher`` with a JSON
launch description on stdin. In order: join the lab's cgroups (so everything started later is
inside), enter a private mount namespace with its own /tmp and /dev/shm, forbid regaining
privileges (no sudo, no setuid binaries), drop to the user's GIDs and UID, scrub the
environment, chdir home, set the umask, exec. Only the standard library is imported, to keep
the step short. Without isolation (the platform is not root) it only scrubs and execs.

Hand-written with ctypes because Python 3.11 has no ``os.unshare`` and no mount call, and
``unshare``/``setpriv`` from util-linux would add two exec steps to every lab start.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def private_mounts(tmp_size: int) -> None:
    """Enter a new mount namespace with a private, size-limited /tmp and /dev/shm."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for target in (b"/tmp", b"/dev/shm"):
        if os.path.isdir(target):
            opts = f"mode=1777,size={tmp_size}".encode()
            _check(libc.mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, opts),
                   f"mount tmpfs on {target.decode()}")  # fmt: skip


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def detach_other_homes(homes: str, own: str) -> None:
    """Lazily unmount, in this namespace only, every mount below ``homes`` other than ``own``
    (other users' home images), so this lab never keeps another user's image busy."""
    prefix = homes.rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [_unescape(line.split()[4]) for line in f]
    libc = _libc()
    for point in sorted(points, key=len, reverse=True):
        if point.startswith(prefix) and point != own and not point.startswith(own + "/"):
            _check(libc.umount2(point.encode(), MNT_DETACH), f"detach {point}")


def drop_privileges(uid: int, gid: int, groups: list[int]) -> None:
    """Become ``uid``/``gid`` with ``groups``, irreversibly."""
    _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise RuntimeError("privileges could not be dropped")


def prepare(spec: dict[str, Any]) -> None:
    """Make this process the lab's: cgroup, mounts, user, home, umask, stdin from /dev/null.

    Shared by the exec path (:func:`launch`) and the pre-forked child
    (``prefork_server.py``), so both isolate a lab the same way.

    Raises:
        OSError: a step failed (joining the cgroup, a mount, the home is missing).
        RuntimeError: root could be regained after dropping privileges.
    """
    if spec["isolate"]:
        pid = str(os.getpid())
        for procs in spec["cgroup_procs"]:
            with open(procs, "w") as f:
                f.write(pid)
        if spec["private_tmp"]:
            private_mounts(spec["tmp_size"])
            if spec.get("homes"):
                detach_other_homes(spec["homes"], spec["home"])
        drop_privileges(spec["uid"], spec["gid"], spec["groups"])
    os.chdir(spec["home"])
    os.umask(spec["umask"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def launch(spec: dict[str, Any]) -> None:
    """Set the process up as ``spec`` says and exec the lab; never returns.

    Raises:
        OSError, RuntimeError: see :func:`prepare`; OSError also if the exec fails.
    """
    prepare(spec)
    os.execve(spec["command"][0], spec["command"], spec["env"])  # noqa: S606 - no shell wanted


def main() -> None:
    spec = json.loads(sys.stdin.buffer.read())
    try:
        launch(spec)
    except Exception as exc:
        print(f"sciplat launcher: cannot start the lab: {exc}", file=sys.stderr, flush=True)
        os._exit(70)


if __name__ == "__main__":
    main()
