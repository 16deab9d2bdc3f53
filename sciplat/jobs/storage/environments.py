"""What identifies an environment for the result cache: its name and a hash of the packages
installed in it (the ``*.dist-info`` / ``*.egg-info`` names, which carry the versions)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sciplat.config import EnvironmentConfig


class EnvironmentIdentity:
    """``name@hash`` of environments, each hash remembered until its site-packages change."""

    def __init__(self) -> None:
        self._hashes: dict[tuple[str, tuple[int, ...]], str] = {}

    def packages_hash(self, prefix: Path) -> str:
        """SHA-256 over the sorted distribution names in the environment's site-packages.
        Installing or removing a package changes the directory's modification time, so the
        hash is recomputed only then."""
        sites = sorted(prefix.glob("lib/python3*/site-packages"))
        key = (str(prefix), tuple(s.stat().st_mtime_ns for s in sites))
        if key not in self._hashes:
            names = sorted(
                p.name for site in sites for p in site.iterdir()
                if p.name.endswith((".dist-info", ".egg-info"))
            )  # fmt: skip
            self._hashes[key] = hashlib.sha256("\n".join(names).encode()).hexdigest()
        return self._hashes[key]

    def of(self, env: EnvironmentConfig) -> str:
        """``name@hash``: changes when the environment is rebuilt with other packages."""
        return f"{env.name}@{self.packages_hash(env.path)}"


def python_of(env: EnvironmentConfig) -> Path:
    """The environment's interpreter (runs the job runner and, through ipykernel, the kernel)."""
    return env.path / "bin" / "python"
