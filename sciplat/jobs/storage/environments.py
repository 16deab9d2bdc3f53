"""What identifies an environment for the result cache: its name and a hash of the packages
installed in it (the ``*.dist-info`` / ``*.egg-info`` names, which carry the versions), plus the
packages the user installed with ``pip install --user``, which the job's kernel imports too."""

from __future__ import annotations

import errno
import hashlib
import os
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

    def of(self, env: EnvironmentConfig, home: Path | None = None) -> str:
        """``name@hash``: changes when the environment is rebuilt with other packages, or when
        the user's own packages in ``home`` (``~/.local/lib/python3.X/site-packages``) change;
        with none there it is the environment's identity alone."""
        identity = f"{env.name}@{self.packages_hash(env.path)}"
        if home is not None:
            versions = sorted(s.parent.name for s in env.path.glob("lib/python3*/site-packages"))
            names = [f"{v}/{n}" for v in versions for n in user_site_packages(home, v)]
            if names:
                digest = hashlib.sha256("\n".join(names).encode()).hexdigest()
                identity += f"+user@{digest}"
        return identity


def user_site_packages(home: Path, version: str) -> list[str]:
    """The sorted distribution names in ``home/.local/lib/<version>/site-packages``.

    The (root) service walks the user's home one directory at a time with ``O_NOFOLLOW``, so a
    symlink planted on the way is not followed (it counts as no user packages)."""
    fd = -1
    try:
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        for part in (".local", "lib", version, "site-packages"):
            sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = sub
        return sorted(n for n in os.listdir(fd) if n.endswith((".dist-info", ".egg-info")))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EACCES):
            return []
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def python_of(env: EnvironmentConfig) -> Path:
    """The environment's interpreter (runs the job runner and, through ipykernel, the kernel)."""
    return env.path / "bin" / "python"
