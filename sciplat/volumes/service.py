"""Homes, group directories and shared volumes: who gets which directory, with which mode."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection
from pathlib import Path

from sciplat.config import VolumesConfig
from sciplat.errors import StorageError
from sciplat.identity.models import Group, User
from sciplat.volumes import storage

log = logging.getLogger(__name__)

HOME_MODE = 0o700
GROUP_MODE = 0o2770
#: Mounted afresh in every lab's mount namespace (see labs/local/storage/launcher.py).
PRIVATE_IN_LABS = (Path("/tmp"), Path("/dev/shm"))  # noqa: S108 - named to be refused


class VolumeService:
    """Creates and checks the directories labs see."""

    def __init__(self, config: VolumesConfig, as_root: bool) -> None:
        self.config = config
        self.as_root = as_root

    def check_root(self) -> None:
        """Create the storage root if needed and check every user can reach below it.

        Raises:
            StorageError: a directory above the root is closed to other users.
        """
        root = self.config.root
        if self.as_root and any(root.resolve().is_relative_to(p) for p in PRIVATE_IN_LABS):
            raise StorageError(
                f"volumes.root {root} is under /tmp or /dev/shm, which every lab replaces with "
                "its own private directory: choose a path such as /srv/sciplat"
            )
        root.mkdir(parents=True, exist_ok=True, mode=0o755)
        if not self.as_root:
            return
        closed = storage.untraversable_ancestor(root)
        if closed is not None:
            raise StorageError(
                f"users cannot reach the storage root {root}: {closed} is not traversable "
                f"by others (mode {oct(closed.stat().st_mode & 0o777)}). Set volumes.root to "
                "a path such as /srv/sciplat, or run `chmod o+x` on that directory"
            )

    def home(self, user: User) -> Path:
        return self.config.home_path(user.name)

    def provision_group(self, group: Group) -> Path:
        path = self.config.group_path(group.name)
        owner = (0, group.gid) if self.as_root else (None, None)
        storage.ensure_dir(path, GROUP_MODE, *owner)
        return path

    def provision(self, user: User, without: Collection[str] = ()) -> Path:
        """Create or repair the user's home and the links to their group and shared directories
        (except the groups named in ``without``, whose directories are not offered).

        Returns the home. Existing files are never touched; only the home's own owner and mode
        and the platform's links are set.

        Raises:
            StorageError: the home or its link directories are not what they should be.
        """
        home = self.home(user)
        owner = (user.uid, user.gid) if self.as_root else (None, None)
        if storage.ensure_dir(home, HOME_MODE, *owner):
            log.info("created home %s for %s", home, user.name)
        group_links = {
            Path(self.config.group_link.format(group=g.name)): self.provision_group(g)
            for g in user.groups
            if g.name not in without
        }
        shared_links = {Path("shared") / v.name: v.path for v in self.config.shared}
        link_dir = Path(self.config.group_link.format(group="x")).parent
        try:
            with storage.open_dir(home) as home_fd:
                self._links(
                    home_fd, group_links, owner, (link_dir, self.config.group_path("x").parent)
                )
                self._links(home_fd, shared_links, owner, None)
        except OSError as exc:
            raise StorageError(f"cannot prepare {home}: {exc.strerror}") from exc
        return home

    def reset_user_env(self, user: User, now: float | None = None) -> Path | None:
        """Move ~/.local, ~/.jupyter, ~/.ipython, ~/.cache and ~/.config into
        ``~/.user_env.<timestamp>/`` (nothing is deleted). Returns that directory, or None if
        there was nothing to move.

        Raises:
            StorageError: the home cannot be opened.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        target = f".user_env.{stamp}"
        owner = (user.uid, user.gid) if self.as_root else (None, None)
        try:
            with storage.open_dir(self.home(user)) as home_fd:
                present = [n for n in RESET_ENTRIES if storage.exists_nofollow(home_fd, n)]
                if not present:
                    return None
                dest_fd = storage.ensure_subdir(home_fd, target, *owner)
                try:
                    for name in present:
                        # rename moves a symlink itself, never what it points at
                        os.rename(name, name, src_dir_fd=home_fd, dst_dir_fd=dest_fd)
                finally:
                    os.close(dest_fd)
        except OSError as exc:
            raise StorageError(f"cannot reset the environment in {self.home(user)}: "
                               f"{exc.strerror}") from exc  # fmt: skip
        log.info("reset %s: moved %s to %s", user.name, ", ".join(present), target)
        return self.home(user) / target

    @staticmethod
    def _links(
        home_fd: int,
        links: dict[Path, Path],
        owner: tuple[int | None, int | None],
        prune: tuple[Path, Path] | None,
    ) -> None:
        """Make ``links`` (relative to the home); with ``prune`` = (directory, target root),
        also remove that directory's other links into the target root."""
        by_dir: dict[Path, dict[str, Path]] = {}
        for rel, target in links.items():
            by_dir.setdefault(rel.parent, {})[rel.name] = target
        if prune is not None:
            by_dir.setdefault(prune[0], {})
        for rel_dir, entries in by_dir.items():
            fd = home_fd
            opened: list[int] = []
            try:
                for part in rel_dir.parts:
                    fd = storage.ensure_subdir(fd, part, *owner)
                    opened.append(fd)
                for name, target in entries.items():
                    storage.set_link(fd, name, target)
                if prune is not None and rel_dir == prune[0]:
                    storage.prune_links(fd, set(entries), prune[1])
            finally:
                for f in opened:
                    os.close(f)


#: What "reset my environment" moves aside: per-user packages, settings and caches.
RESET_ENTRIES = (".local", ".jupyter", ".ipython", ".cache", ".config")
