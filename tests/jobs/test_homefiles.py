"""Files in homes, read and written by the root service for a user (real files, no platform)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sciplat.errors import StorageError
from sciplat.jobs.errors import JobRequestError
from sciplat.jobs.storage import homefiles
from tests.conftest import needs_root

UID = 54321  # no account needed: only ownership and mode bits are compared


@pytest.fixture
def tmp() -> Iterator[Path]:
    """A scratch directory every user can enter (pytest's own is root's 0700)."""
    path = Path(tempfile.mkdtemp(prefix="sciplat-jobs-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def home(tmp: Path) -> Path:
    home = tmp / "home"
    home.mkdir(mode=0o700)
    os.chown(home, UID, UID)
    return home


def own(path: Path, mode: int, uid: int = UID) -> Path:
    os.chown(path, uid, uid)
    path.chmod(mode)
    return path


@needs_root
def test_the_user_reads_their_own_files_and_nothing_they_could_not(home: Path, tmp: Path) -> None:
    nb = home / "a.ipynb"
    nb.write_text("{}")
    own(nb, 0o600)
    assert homefiles.read_user_file("a.ipynb", home, [], UID, [UID], 100) == b"{}"
    assert homefiles.read_user_file(str(nb), home, [], UID, [UID], 100) == b"{}"
    assert len(homefiles.hash_user_file("a.ipynb", home, [], UID, [UID])) == 64

    secret = tmp / "secret"
    secret.write_text("root only")
    own(secret, 0o600, 0)
    (home / "link").symlink_to(secret)
    with pytest.raises(JobRequestError, match="only files in your home"):
        homefiles.read_user_file("link", home, [], UID, [UID], 100)
    with pytest.raises(JobRequestError, match="only files in your home"):
        homefiles.read_user_file("../secret", home, [], UID, [UID], 100)
    with pytest.raises(JobRequestError, match="may not read it"):
        homefiles.read_user_file(str(secret), home, [tmp], UID, [UID], 100)
    own(secret, 0o640, 0)
    os.chown(secret, 0, 7777)
    assert homefiles.read_user_file(str(secret), home, [tmp], UID, [UID, 7777], 100)
    with pytest.raises(JobRequestError, match="no such file"):
        homefiles.read_user_file("missing.ipynb", home, [], UID, [UID], 100)
    with pytest.raises(JobRequestError, match="larger than"):
        homefiles.read_user_file("a.ipynb", home, [], UID, [UID], 1)


@needs_root
def test_a_job_directory_belongs_to_the_user_and_refuses_planted_symlinks(
    home: Path, tmp: Path
) -> None:
    job = homefiles.create_job_dir(home, ".sciplat/jobs", "j1", {"input.ipynb": b"x"}, (UID, UID))
    assert job == home / ".sciplat" / "jobs" / "j1"
    for path in (home / ".sciplat", job.parent, job, job / "input.ipynb"):
        assert path.stat().st_uid == UID
    assert (job.parent.stat().st_mode & 0o777) == 0o700
    assert homefiles.read_job_file(home, ".sciplat/jobs", "j1", "input.ipynb") == b"x"
    assert homefiles.read_job_file(home, ".sciplat/jobs", "nope", "input.ipynb") is None
    assert (homefiles.job_dir_size(job) or 0) > 0

    (job / "output.ipynb").symlink_to(tmp / "elsewhere")
    (tmp / "elsewhere").write_text("not the job's")
    assert homefiles.read_job_file(home, ".sciplat/jobs", "j1", "output.ipynb") is None

    homefiles.remove_job_dir(home, ".sciplat/jobs", "j1")
    assert not job.exists() and (tmp / "elsewhere").exists()

    other = tmp / "other"
    other.mkdir()
    (home / ".sciplat" / "jobs").rmdir()
    (home / ".sciplat" / "jobs").symlink_to(other)
    with pytest.raises(StorageError):
        homefiles.create_job_dir(home, ".sciplat/jobs", "j2", {"input.ipynb": b"x"}, (UID, UID))
    assert list(other.iterdir()) == []
