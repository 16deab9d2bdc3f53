"""Scratch storage roots for tests: under /srv (never /tmp: every lab mounts its own /tmp, and
the platform refuses a storage root there as root)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import string
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def scratch_root(prefix: str) -> Iterator[Path]:
    """A fresh world-traversable ``/srv/<prefix>-<random>``, removed afterwards."""
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
    path = Path(f"/srv/{prefix}-{suffix}")
    path.mkdir(mode=0o755)
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
