"""Running system tools (e2fsprogs, util-linux, coreutils, xfsprogs) for the quota storage."""

from __future__ import annotations

import os
import shutil
import subprocess

from sciplat.quotas.errors import StorageLimitError

#: Where root's tools live even when $PATH lacks the sbin directories.
_SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def find_tool(name: str) -> str | None:
    """The path of tool ``name``, looking in $PATH and then the sbin directories."""
    found = shutil.which(name)
    if found:
        return found
    path = os.pathsep.join(_SBIN)
    return shutil.which(name, path=path)


def run(cmd: list[str], what: str, ok_codes: tuple[int, ...] = (0,)) -> str:
    """Run ``cmd`` (no shell) and return its standard output.

    Raises:
        StorageLimitError: the tool is missing or exits with a code not in ``ok_codes``; the
            message says ``what`` failed and quotes the tool's own error.
    """
    exe = find_tool(cmd[0])
    if exe is None:
        raise StorageLimitError(f"cannot {what}: {cmd[0]} is not installed")
    proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, check=False)
    if proc.returncode not in ok_codes:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise StorageLimitError(
            f"cannot {what}: {cmd[0]} exited with {proc.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )
    return proc.stdout
