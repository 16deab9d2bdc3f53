"""Fetching a repository of notebooks for ``sciplat nbcheck`` (git's own command)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sciplat.errors import SciplatError

_PREFIXES = ("https://", "http://", "git@", "ssh://", "git://", "file://")


def is_git_url(source: str) -> bool:
    return source.startswith(_PREFIXES) or source.endswith(".git")


def clone(url: str, dest: Path, timeout: float = 300) -> Path:
    """A shallow clone of ``url`` at ``dest``.

    Raises:
        SciplatError: git failed (its message is included) or took too long.
    """
    if url.startswith("-"):
        raise SciplatError(f"{url}: not a repository URL")
    try:
        result = subprocess.run(
            ["git", "clone", "--quiet", "--depth", "1", "--", url, str(dest)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SciplatError(f"cannot clone {url}: {exc}") from exc
    if result.returncode != 0:
        raise SciplatError(f"cannot clone {url}: {result.stderr.strip()[-500:]}")
    return dest
