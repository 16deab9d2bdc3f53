"""Files in users' homes, read and written by the (root) service on the user's behalf.

- Reading a notebook or a declared input: the path is resolved, must lie in the user's home
  or under the storage root (group directories are linked into homes), and the opened file
  must be readable by the user by its mode bits (owner, group, other) and every directory on
  the way must be enterable by them, so a job can never read what its user could not.
- A job's directory ``<home>/<results_dir>/<id>/`` is created and written relative to a
  descriptor of the home opened with ``O_NOFOLLOW`` at every step, owned by the user, so a
  user who plants a symlink there makes the service refuse, not write elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from sciplat.jobs.errors import JobRequestError
from sciplat.volumes.storage import ensure_subdir, open_dir

_READ_CHUNK = 1 << 20


def _allowed(st: os.stat_result, uid: int | None, gids: Sequence[int], bit: int) -> bool:
    """Whether the user (uid, gids) has permission ``bit`` (4 read, 1 enter) by mode bits.
    ``uid`` None: the platform is not root and every job runs as its own account."""
    if uid is None or uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in gids:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def resolve_user_path(path: str, home: Path, roots: Sequence[Path]) -> Path:
    """``path`` (relative to ``home``, or absolute) resolved through symlinks, if it lies in
    the home or one of ``roots``.

    Raises:
        JobRequestError: outside the user's storage.
    """
    if "\0" in path:
        raise JobRequestError("a path cannot contain NUL characters")
    real = Path(os.path.realpath(home / path))
    if not any(real == r or real.is_relative_to(r) for r in (home.resolve(), *roots)):
        raise JobRequestError(
            f"{path}: only files in your home or your group directories can be used"
        )
    return real


@contextlib.contextmanager
def open_for_user(real: Path, uid: int | None, gids: Sequence[int], shown: str) -> Iterator[int]:
    """A read descriptor of the resolved file ``real`` if the user may read it.

    Raises:
        JobRequestError: missing, not a regular file, or not readable by the user.
    """
    for parent in reversed(real.parents):
        try:
            pst = parent.stat()
        except OSError as exc:
            raise JobRequestError(f"{shown}: no such file in your storage") from exc
        if not _allowed(pst, uid, gids, 1):
            raise JobRequestError(f"{shown}: you may not read it (directory {parent})")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise JobRequestError(f"{shown}: no such file in your storage") from exc
    except OSError as exc:
        raise JobRequestError(f"{shown}: cannot be read ({exc.strerror})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise JobRequestError(f"{shown}: not a regular file")
        if not _allowed(st, uid, gids, 4):
            raise JobRequestError(f"{shown}: you may not read it")
        yield fd
    finally:
        os.close(fd)


def read_user_file(
    path: str,
    home: Path,
    roots: Sequence[Path],
    uid: int | None,
    gids: Sequence[int],
    limit: int,
) -> bytes:
    """The bytes of the user's file ``path`` (at most ``limit``).

    Raises:
        JobRequestError: outside the user's storage, unreadable by them, or too large.
    """
    real = resolve_user_path(path, home, roots)
    with open_for_user(real, uid, gids, path) as fd:
        if os.fstat(fd).st_size > limit:
            raise JobRequestError(f"{path}: larger than the {limit // 2**20} MiB allowed")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit + 1)[:limit]


def hash_user_file(
    path: str, home: Path, roots: Sequence[Path], uid: int | None, gids: Sequence[int]
) -> str:
    """The SHA-256 of the user's file ``path`` (a declared input of a notebook).

    Raises:
        JobRequestError: outside the user's storage or unreadable by them.
    """
    real = resolve_user_path(path, home, roots)
    digest = hashlib.sha256()
    with open_for_user(real, uid, gids, path) as fd, os.fdopen(os.dup(fd), "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _job_parent(home: Path, results_dir: str, owner: tuple[int, int] | None) -> Iterator[int]:
    """A descriptor of ``<home>/<results_dir>``, created (0700, the user's) if missing.

    Raises:
        StorageError: a component is not a plain directory (e.g. a symlink).
    """
    uid, gid = owner if owner else (None, None)
    fds: list[int] = []
    try:
        with open_dir(home) as home_fd:
            fd = home_fd
            for part in results_dir.split("/"):
                fd = ensure_subdir(fd, part, uid, gid)
                fds.append(fd)
            if stat.S_IMODE(os.fstat(fd).st_mode) != 0o700:
                os.fchmod(fd, 0o700)  # results are private, whatever the umask made
            yield fd
    finally:
        for fd in fds:
            os.close(fd)


def create_job_dir(
    home: Path,
    results_dir: str,
    job_id: str,
    files: dict[str, bytes],
    owner: tuple[int, int] | None,
) -> Path:
    """Make ``<home>/<results_dir>/<job_id>/`` (0700, the user's) holding ``files``.

    Raises:
        StorageError: a planted symlink or non-directory on the way.
        OSError: the home is full or unwritable.
    """
    with _job_parent(home, results_dir, owner) as parent:
        # left by a start the service did not finish recording (it died): begin afresh
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(job_id, dir_fd=parent)
        os.mkdir(job_id, 0o700, dir_fd=parent)
        if owner:
            os.chown(job_id, *owner, dir_fd=parent, follow_symlinks=False)
        job_fd = os.open(job_id, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        try:
            for name, data in files.items():
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                fd = os.open(name, flags, 0o600, dir_fd=job_fd)
                with os.fdopen(fd, "wb") as f:
                    if owner:
                        os.fchown(f.fileno(), *owner)
                    f.write(data)
        finally:
            os.close(job_fd)
    return home / results_dir / job_id


def read_job_file(home: Path, results_dir: str, job_id: str, name: str) -> bytes | None:
    """A file the job wrote, None if it is missing (or a planted symlink)."""
    try:
        with open_dir(home) as fd0:
            fd = fd0
            opened = []
            try:
                for part in [*results_dir.split("/"), job_id]:
                    fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                    opened.append(fd)
                file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
            finally:
                for d in opened:
                    os.close(d)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return None
        raise
    with os.fdopen(file_fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read()


def job_dir_size(path: Path) -> int | None:
    """Bytes under a job's directory (not following symlinks); None if it is gone."""
    if not path.is_dir() or path.is_symlink():
        return None
    total = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def remove_job_dir(home: Path, results_dir: str, job_id: str) -> None:
    """Delete a job's directory (shutil.rmtree relative to a descriptor, no symlinks followed)."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), open_dir(home) as fd0:
        opened = []
        try:
            fd = fd0
            for part in results_dir.split("/"):
                fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                opened.append(fd)
            shutil.rmtree(job_id, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                raise
        finally:
            for d in opened:
                os.close(d)
