"""Tutorial notebooks: one shared, read-only copy of a git repository or directory, linked into
every home.

Layout under the storage root::

    tutorials/.cache/       the git clone (sources that are git repositories)
    tutorials/<version>/    a copy: git commit, or content hash of a directory; dirs 0555,
                            files 0444, owned by root; built in .build-* and renamed into place
    tutorials/current       symlink to the newest version, replaced atomically
    ~/<link>                symlink to tutorials/current, in each home

Users open the notebooks from the link and save their own copies elsewhere in their home, so a
refresh never touches their work. This is a storage-level module: it runs git.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sciplat.config import TutorialsConfig
from sciplat.errors import SciplatError
from sciplat.shared import Shared
from sciplat.volumes import storage

log = logging.getLogger(__name__)

#: Seconds one git command may take.
GIT_TIMEOUT = 120
#: Versions kept on disk (the current one is always among them).
KEEP_VERSIONS = 3
_CHUNK = 1 << 20


class TutorialsError(SciplatError):
    """The tutorials could not be fetched or copied, and there is no older copy to serve."""

    code = "tutorials"
    status_code = 500


class TutorialService(Shared):
    """Keeps ``<root>/tutorials/current`` up to date and links it into homes."""

    def __init__(
        self,
        config: TutorialsConfig,
        root: Path,
        as_root: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.base = root / "tutorials"
        #: ``<root>/tutorials/current``, where every home's link points.
        self.current_link = self.base / "current"
        self.as_root = as_root
        self.clock = clock
        self._fetched: float | None = None

    def current(self) -> Path | None:
        """The version directory ``current`` points at, if there is one."""
        with contextlib.suppress(OSError):
            path = self.base / os.readlink(self.current_link)
            if path.is_dir():
                return path
        return None

    def refresh(self) -> Path | None:
        """Bring the shared copy up to date; return its version directory (None: feature off).

        A git source is fetched at most every ``refresh_seconds``. If fetching or copying
        fails while an older copy exists, that copy is served and a warning logged.

        Raises:
            TutorialsError: the source cannot be read and there is no copy yet.
        """
        source = self.config.source
        if not source:
            return None
        if self.config.is_git and self._fetched is not None:
            current = self.current()
            if current is not None and self.clock() - self._fetched < self.config.refresh_seconds:
                return current
        owner = 0 if self.as_root else None
        storage.ensure_dir(self.base, 0o755, owner, owner)
        with self._locked():
            try:
                if self.config.is_git:
                    self._fetched = self.clock()
                    version, tree = self._fetch(), self.base / ".cache"
                else:
                    tree = Path(source).resolve()  # os.fwalk yields nothing for a symlink
                    if not tree.is_dir():
                        raise TutorialsError("it is not a directory")
                    version = _content_hash(tree)
                return self._install(version, tree)
            except (TutorialsError, OSError) as exc:
                what = exc.message if isinstance(exc, TutorialsError) else str(exc)
                current = self.current()
                if current is None:
                    raise TutorialsError(
                        f"cannot provide the tutorials from {source}: {what}. Check "
                        "tutorials.source and tutorials.ref in sciplat.yaml."
                    ) from exc
                log.warning("tutorials: cannot refresh from %s (%s); serving %s",
                            source, what, current.name)  # fmt: skip
                return current

    def link_into(self, home: Path, uid: int | None, gid: int | None) -> None:
        """Make ``<home>/<link>`` a symlink to ``tutorials/current``, without following any
        symlink the user made; a user's own file or directory of that name is kept.

        Raises:
            TutorialsError: the home cannot be opened (missing, or not a directory).
        """
        name = self.config.link
        try:
            with storage.open_dir(home) as fd:
                storage.set_link(fd, name, self.current_link)
                if not stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode):
                    log.info("tutorials: %s/%s is the user's own; not linking", home, name)
                elif self.as_root and uid is not None and gid is not None:
                    os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise TutorialsError(f"cannot link the tutorials into {home}: {exc.strerror}") from exc

    # -- internals ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One refresh at a time, across threads and processes (hub, CLI)."""
        fd = os.open(self.base / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _fetch(self) -> str:
        """Clone or update ``.cache``; return the commit checked out."""
        cache, ref = self.base / ".cache", self.config.ref
        if (cache / ".git").is_dir():
            _git("-C", str(cache), "remote", "set-url", "origin", self.config.source)
            _git("-C", str(cache), "fetch", "--depth", "1", "origin", ref or "HEAD")
            _git("-C", str(cache), "reset", "--quiet", "--hard", "FETCH_HEAD")
        else:
            _remove(cache)
            branch = ["--branch", ref] if ref else []
            # a failed clone removes its directory itself
            _git("clone", "--quiet", "--depth", "1", *branch, "--", self.config.source, str(cache))
            os.chmod(cache, 0o700)
        return _git("-C", str(cache), "rev-parse", "HEAD")

    def _install(self, version: str, tree: Path) -> Path:
        """Copy ``tree`` to ``<version>/`` unless present, point ``current`` at it, prune."""
        final = self.base / version
        if not final.is_dir():
            build = Path(tempfile.mkdtemp(prefix=".build-", dir=self.base))
            try:
                _copy(tree, build, self.as_root)
                os.rename(build, final)
            finally:
                _remove(build)
            log.info("tutorials: new version %s from %s", version, self.config.source)
        os.utime(final)  # the newest is the one made current last
        link = self.base / f".current-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(version)
        os.replace(link, self.current_link)
        self._prune(final)
        return final

    def _prune(self, current: Path) -> None:
        versions, leftovers = [], []
        for entry in os.scandir(self.base):
            if entry.name.startswith((".build-", ".trash-")):
                leftovers.append(Path(entry.path))
            elif not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                versions.append(Path(entry.path))
        versions.sort(key=lambda p: (p != current, -p.stat().st_mtime_ns))
        for old in versions[KEEP_VERSIONS:]:
            trash = self.base / f".trash-{old.name}"
            os.rename(old, trash)  # a half-deleted tree never looks like a version
            leftovers.append(trash)
        for path in leftovers:
            _remove(path)


def _git(*args: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}
    try:
        done = subprocess.run(["git", *args], env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, check=False)  # fmt: skip
    except (subprocess.TimeoutExpired, OSError) as exc:  # too slow, or git is not installed
        raise TutorialsError(f"git did not finish: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        step = args[2] if args[0] == "-C" else args[0]
        raise TutorialsError(f"git {step} failed: {lines[-1]}")
    return done.stdout.strip()


def _entries(tree: Path) -> Iterator[tuple[str, int, str | None]]:
    """Directories ``(rel, dir_fd, None)`` and regular files ``(rel, dir_fd, name)`` below
    ``tree``, in a fixed order; symlinks, special files and ``.git`` are skipped."""

    def fail(exc: OSError) -> None:
        raise exc

    for top, dirs, files, dir_fd in os.fwalk(tree, onerror=fail):
        dirs[:] = sorted(d for d in dirs if d != ".git" and _is(dir_fd, d, stat.S_ISDIR))
        rel = os.path.relpath(top, tree)
        yield rel, dir_fd, None
        for name in sorted(files):
            if name != ".git" and _is(dir_fd, name, stat.S_ISREG):
                yield rel, dir_fd, name


def _is(dir_fd: int, name: str, kind: Callable[[int], bool]) -> bool:
    return kind(os.lstat(name, dir_fd=dir_fd).st_mode)


def _open(dir_fd: int, name: str) -> int:
    """Open a regular file without following a symlink swapped in since it was listed."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{name} is no longer a regular file")
    return fd


def _content_hash(tree: Path) -> str:
    digest = hashlib.sha256()
    for rel, dir_fd, name in _entries(tree):
        digest.update(f"{'F' if name else 'D'}{rel}/{name or ''}\0".encode())
        if name:
            with os.fdopen(_open(dir_fd, name), "rb") as f:
                digest.update(f"{os.fstat(f.fileno()).st_size}\0".encode())
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
    return digest.hexdigest()[:40]


def _copy(tree: Path, dest: Path, as_root: bool) -> None:
    """Copy ``tree`` into the empty directory ``dest``: dirs 0555, files 0444 (root's)."""
    made = [dest]
    for rel, dir_fd, name in _entries(tree):
        here = dest / rel
        if name is None:
            if rel != ".":
                here.mkdir(mode=0o700)
                made.append(here)
            continue
        with (
            os.fdopen(_open(dir_fd, name), "rb") as src,
            open(os.open(here / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out,
        ):
            shutil.copyfileobj(src, out, _CHUNK)
            os.fchmod(out.fileno(), 0o444)
            if as_root:
                os.fchown(out.fileno(), 0, 0)
    for path in reversed(made):
        if as_root:
            os.chown(path, 0, 0)
        os.chmod(path, 0o555)  # noqa: S103 - world-readable on purpose, never writable


def _remove(path: Path) -> None:
    """Delete a tree this module made, read-only directories included."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    for top, _dirs, _files in os.walk(path):
        os.chmod(top, 0o700)
    shutil.rmtree(path)
