"""sciplat/volumes/tutorials.py: the shared read-only tutorials copy and its links, on a real
filesystem with real git (local repositories over file://), as root."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from sciplat.config import TutorialsConfig
from sciplat.volumes.tutorials import TutorialsError, TutorialService
from tests.conftest import needs_root
from tests.support.clock import Clock
from tests.support.storage import scratch_root

pytestmark = needs_root  # the storage root lives under /srv, owners are set with chown

NOBODY = 65534


@pytest.fixture
def base() -> Iterator[Path]:
    with scratch_root("sciplat-unit-tut") as path:
        yield path


@pytest.fixture
def root(base: Path) -> Path:
    (base / "storage").mkdir(mode=0o755)
    return base / "storage"


@pytest.fixture
def notebooks(base: Path) -> Path:
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "intro.ipynb").write_text('{"cells": []}')
    (src / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (src / ".git").mkdir()
    (src / ".git" / "config").write_text("[core]\n")
    (src / "leak").symlink_to("/etc/shadow")
    return src


@pytest.fixture
def home(base: Path) -> Path:
    path = base / "home"
    path.mkdir(mode=0o700)
    os.chown(path, NOBODY, NOBODY)
    return path


def service(root: Path, source: str, clock: Clock | None = None, **kw: object) -> TutorialService:
    config = TutorialsConfig.model_validate({"source": source, **kw})
    return TutorialService(config, root, as_root=True, clock=clock or Clock())


def git(*args: str, cwd: Path | None = None) -> str:
    cmd = ["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def remote(base: Path) -> Path:
    """A bare repository with one commit on main (intro.ipynb)."""
    bare, work = base / "origin.git", base / "work"
    git("init", "--quiet", "--bare", "-b", "main", str(bare))
    git("init", "--quiet", "-b", "main", str(work))
    git("remote", "add", "origin", str(bare), cwd=work)
    commit(work, "intro.ipynb", "v1")
    return bare


def commit(work: Path, name: str, text: str, branch: str = "main") -> str:
    (work / name).write_text(text)
    git("add", name, cwd=work)
    git("commit", "--quiet", "-m", f"{name}: {text}", cwd=work)
    git("push", "--quiet", "origin", f"HEAD:{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def tree_modes(path: Path) -> set[tuple[str, int, int, int]]:
    out = set()
    for p in [path, *path.rglob("*")]:
        st = p.lstat()
        out.add(("d" if p.is_dir() else "f", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
    return out


# -- configuration --------------------------------------------------------------------------
def test_config_detects_git_and_refuses_bad_values():
    assert TutorialsConfig(source="https://github.com/lsst/tutorial-notebooks").is_git
    assert TutorialsConfig(source="git@github.com:lsst/x.git").is_git
    assert TutorialsConfig(source="/srv/repo.git").is_git
    assert not TutorialsConfig(source="/srv/notebooks").is_git
    for bad in ({"source": "notebooks"}, {"link": "a/b"}, {"link": ".."}, {"ref": "--upload"}):
        with pytest.raises(ValidationError):
            TutorialsConfig.model_validate({"source": "/srv/x", **bad})
    with pytest.raises(ValidationError):
        TutorialsConfig.model_validate({"sourse": "/srv/x"})


def test_off_when_no_source(root):
    assert service(root, "").refresh() is None
    assert not (root / "tutorials").exists()


# -- directory sources ----------------------------------------------------------------------
def test_directory_copy_is_read_only_root_owned_and_current(root, notebooks):
    version = service(root, str(notebooks)).refresh()
    assert version is not None
    assert version.parent == root / "tutorials"
    assert os.readlink(root / "tutorials" / "current") == version.name
    assert (version / "intro.ipynb").read_text() == '{"cells": []}'
    assert (version / "sub" / "data.csv").read_text() == "a,b\n1,2\n"
    assert not (version / ".git").exists()
    assert not (version / "leak").exists() and not (version / "leak").is_symlink()
    assert tree_modes(version) == {("d", 0o555, 0, 0), ("f", 0o444, 0, 0)}
    assert stat.S_IMODE((root / "tutorials").stat().st_mode) == 0o755
    assert [p.name for p in (root / "tutorials").iterdir() if p.name.startswith(".build")] == []


def test_unchanged_directory_keeps_its_version_changed_one_moves_current(root, notebooks):
    svc = service(root, str(notebooks))
    first = svc.refresh()
    assert first is not None
    inode = (first / "intro.ipynb").stat().st_ino
    assert svc.refresh() == first
    assert (first / "intro.ipynb").stat().st_ino == inode  # not copied again
    (notebooks / "intro.ipynb").write_text('{"cells": [1]}')
    second = svc.refresh()
    assert second is not None
    assert second != first
    assert (second / "intro.ipynb").read_text() == '{"cells": [1]}'
    assert (root / "tutorials" / "current").resolve() == second
    assert first.is_dir()  # kept for labs that still look at it


def test_only_the_newest_three_versions_are_kept(root, notebooks):
    svc = service(root, str(notebooks))
    made = []
    for i in range(5):
        (notebooks / "intro.ipynb").write_text(str(i))
        made.append(svc.refresh())
    left = {p for p in (root / "tutorials").iterdir() if not p.name.startswith(".")}
    assert left == {root / "tutorials" / "current", *made[2:]}
    # going back to older content makes that version current and the newest again
    (notebooks / "intro.ipynb").write_text("2")
    assert svc.refresh() == made[2]
    (notebooks / "intro.ipynb").write_text("5")
    newest = svc.refresh()
    left = {p for p in (root / "tutorials").iterdir() if not p.name.startswith(".")}
    assert left == {root / "tutorials" / "current", made[2], made[4], newest}


def test_missing_directory_raises_naming_it(root, base):
    with pytest.raises(TutorialsError, match=f"{base}/nowhere: it is not a directory"):
        service(root, str(base / "nowhere")).refresh()


# -- git sources ----------------------------------------------------------------------------
def test_git_clone_then_refresh_only_after_the_interval(root, remote, base):
    clock = Clock()
    svc = service(root, f"file://{remote}", clock, refresh_seconds=300)
    first = svc.refresh()
    assert first is not None
    assert first.name == git("rev-parse", "HEAD", cwd=base / "work")
    assert (first / "intro.ipynb").read_text() == "v1"
    assert not (first / ".git").exists()
    assert tree_modes(first) == {("d", 0o555, 0, 0), ("f", 0o444, 0, 0)}

    new = commit(base / "work", "intro.ipynb", "v2")
    clock.now += 299
    assert svc.refresh() == first  # fetched too recently
    clock.now += 2
    second = svc.refresh()
    assert second is not None
    assert second.name == new
    assert (second / "intro.ipynb").read_text() == "v2"
    assert (root / "tutorials" / "current").resolve() == second


def test_git_ref_selects_a_branch(root, remote, base):
    git("checkout", "--quiet", "-b", "stable", cwd=base / "work")
    stable = commit(base / "work", "intro.ipynb", "stable", branch="stable")
    version = service(root, f"file://{remote}", ref="stable").refresh()
    assert version is not None
    assert version.name == stable
    assert (version / "intro.ipynb").read_text() == "stable"


def test_git_failure_keeps_serving_the_old_copy(root, remote, base, caplog):
    first = service(root, f"file://{remote}").refresh()
    broken = service(root, f"file://{base}/missing.git")
    with caplog.at_level(logging.WARNING, logger="sciplat.volumes.tutorials"):
        assert broken.refresh() == first
    assert "git fetch failed" in caplog.text
    assert f"{base}/missing.git" in caplog.text


def test_git_failure_without_a_copy_raises_a_clear_error(root, base):
    url = f"file://{base}/missing.git"
    with pytest.raises(TutorialsError) as err:
        service(root, url).refresh()
    assert url in err.value.message
    assert "git clone failed" in err.value.message
    assert not (root / "tutorials" / ".cache").exists()
    assert not (root / "tutorials" / "current").exists()


# -- links into homes -----------------------------------------------------------------------
def test_link_into_makes_the_link_owned_by_the_user(root, notebooks, home):
    svc = service(root, str(notebooks))
    svc.refresh()
    svc.link_into(home, NOBODY, NOBODY)
    link = home / "tutorials"
    assert os.readlink(link) == str(root / "tutorials" / "current")
    assert (link.lstat().st_uid, link.lstat().st_gid) == (NOBODY, NOBODY)
    assert (link / "intro.ipynb").read_text() == '{"cells": []}'


def test_link_into_replaces_a_stale_link(root, notebooks, home):
    (home / "tutorials").symlink_to("/srv/old-tutorials")
    service(root, str(notebooks)).link_into(home, NOBODY, NOBODY)
    assert os.readlink(home / "tutorials") == str(root / "tutorials" / "current")


def test_link_into_keeps_a_users_own_directory(root, notebooks, home, caplog):
    (home / "tutorials").mkdir()
    (home / "tutorials" / "mine.ipynb").write_text("mine")
    with caplog.at_level(logging.INFO, logger="sciplat.volumes.tutorials"):
        service(root, str(notebooks)).link_into(home, NOBODY, NOBODY)
    assert not (home / "tutorials").is_symlink()
    assert (home / "tutorials" / "mine.ipynb").read_text() == "mine"
    assert "the user's own" in caplog.text


def test_link_into_replaces_a_users_symlink_to_etc_without_following_it(root, notebooks, home):
    (home / "tutorials").symlink_to("/etc")
    before = sorted(os.listdir("/etc"))
    service(root, str(notebooks)).link_into(home, NOBODY, NOBODY)
    assert os.readlink(home / "tutorials") == str(root / "tutorials" / "current")
    assert sorted(os.listdir("/etc")) == before
    assert stat.S_ISDIR(Path("/etc").lstat().st_mode)


def test_link_into_refuses_a_home_that_is_a_symlink(root, notebooks, base):
    (base / "fake-home").symlink_to("/etc")
    with pytest.raises(TutorialsError, match="cannot link the tutorials into"):
        service(root, str(notebooks)).link_into(base / "fake-home", NOBODY, NOBODY)
    assert not Path("/etc/tutorials").exists()


def test_a_user_cannot_change_the_shared_copy(root, notebooks, home):
    svc = service(root, str(notebooks))
    version = svc.refresh()
    assert version is not None
    svc.link_into(home, NOBODY, NOBODY)
    probe = r"""
import errno, os, sys
def attempt(f):
    try:
        f()
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ALLOWED"
t = sys.argv[1]
print(open(t + "/intro.ipynb").read())
print(attempt(lambda: open(t + "/new.ipynb", "w")))
print(attempt(lambda: open(t + "/intro.ipynb", "a")))
print(attempt(lambda: os.unlink(t + "/intro.ipynb")))
print(attempt(lambda: os.mkdir(t + "/sub/x")))
print(attempt(lambda: os.chmod(t + "/intro.ipynb", 0o666)))
print(attempt(lambda: os.rename(t + "/sub", t + "/moved")))
"""
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
         "/usr/bin/python3", "-I", "-c", probe, str(home / "tutorials")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0] == '{"cells": []}'  # readable
    assert all(r in {"EACCES", "EROFS", "EPERM"} for r in lines[1:]), lines
    assert len(lines) == 7
    assert (version / "intro.ipynb").read_text() == '{"cells": []}'


def test_a_directory_source_reached_through_a_symlink_is_copied(root, notebooks, base):
    (base / "via-link").symlink_to(notebooks)
    version = service(root, str(base / "via-link")).refresh()
    assert version is not None
    assert (version / "intro.ipynb").read_text() == '{"cells": []}'
