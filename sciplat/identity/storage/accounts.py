"""Real host accounts, so that ``id``, ``ls -l`` and ``whoami`` inside a lab show names.

Uses the shadow-utils commands (``groupadd``, ``useradd``, ``usermod``), which lock
``/etc/passwd`` and ``/etc/group`` properly, rather than editing the files.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import pwd
import subprocess
from pathlib import Path

from sciplat.errors import ConflictError, SciplatError

log = logging.getLogger(__name__)

#: Marks accounts the platform made, in the GECOS field.
GECOS = "sciplat user"


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SciplatError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")


class HostAccounts:
    """Creates and updates host accounts; a no-op when disabled (non-root installs)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def ensure_group(self, name: str, gid: int) -> None:
        """Make sure group ``name`` exists with ``gid``.

        Raises:
            ConflictError: the name or the number belongs to another host group.
        """
        if not self.enabled:
            return
        try:
            existing = grp.getgrnam(name)
        except KeyError:
            existing = None
        if existing is not None:
            if existing.gr_gid != gid:
                raise ConflictError(
                    f"host group {name!r} exists with GID {existing.gr_gid}, but the platform "
                    f"gave it {gid}: rename one of them"
                )
            return
        try:
            other = grp.getgrgid(gid).gr_name
        except KeyError:
            other = None
        if other is not None:
            raise ConflictError(
                f"GID {gid} for group {name!r} is taken by host group {other!r}: move "
                "identity.gid_range / uid_range to free numbers"
            )
        _run(["groupadd", "--gid", str(gid), name])
        log.info("created host group %s (%d)", name, gid)

    def ensure_user(self, name: str, uid: int, gid: int, home: Path, groups: list[str]) -> None:
        """Make sure user ``name`` exists with ``uid``, private group ``gid`` and ``groups``.

        Raises:
            ConflictError: the name or number belongs to an account the platform did not make.
        """
        if not self.enabled:
            return
        self.ensure_group(name, gid)
        try:
            existing = pwd.getpwnam(name)
        except KeyError:
            existing = None
        if existing is not None and (existing.pw_uid != uid or existing.pw_gecos != GECOS):
            raise ConflictError(
                f"host account {name!r} exists (UID {existing.pw_uid}) and is not the "
                "platform's: choose another user name"
            )
        if existing is None:
            try:
                other = pwd.getpwuid(uid).pw_name
            except KeyError:
                other = None
            if other is not None:
                raise ConflictError(
                    f"UID {uid} for user {name!r} is taken by host account {other!r}: move "
                    "identity.uid_range to free numbers"
                )
            _run(
                ["useradd", "--uid", str(uid), "--gid", str(gid), "--home-dir", str(home),
                 "--no-create-home", "--shell", "/bin/bash", "--comment", GECOS, name]
            )  # fmt: skip
            log.info("created host account %s (%d)", name, uid)
        current = sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem)
        if current != sorted(groups) or (existing and existing.pw_dir != str(home)):
            _run(["usermod", "--home", str(home), "--groups", ",".join(groups), name])

    def remove_user(self, name: str) -> None:
        """Delete a platform-made host account and its private group (files are kept)."""
        if not self.enabled:
            return
        try:
            ours = pwd.getpwnam(name).pw_gecos == GECOS
        except KeyError:
            ours = True  # only the private group may be left
        if not ours:
            return
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            _run(["userdel", name])
        self.remove_group(name)

    def remove_group(self, name: str) -> None:
        """Delete a host group if it exists."""
        if not self.enabled:
            return
        try:
            grp.getgrnam(name)
        except KeyError:
            return
        _run(["groupdel", name])
