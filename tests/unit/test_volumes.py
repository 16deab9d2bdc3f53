"""sciplat/volumes/service.py and storage.py: homes, group directories and links, as root."""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sciplat.config import SharedVolume, VolumesConfig
from sciplat.errors import StorageError
from sciplat.identity.models import Group, User
from sciplat.volumes.service import VolumeService
from tests.conftest import needs_root
from tests.support.storage import scratch_root

pytestmark = needs_root

UID = 900501
ASTRO = Group("astro", 900601)
OPTICS = Group("optics", 900602)


def user(*groups: Group) -> User:
    return User("alice", UID, UID, groups=groups)


@pytest.fixture
def base() -> Iterator[Path]:
    with scratch_root("sciplat-unit") as path:
        yield path


@pytest.fixture
def service(base: Path) -> VolumeService:
    svc = VolumeService(VolumesConfig(root=base / "storage"), as_root=True)
    svc.check_root()
    return svc


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_provision_creates_home_group_dir_and_link(service, base):
    home = service.provision(user(ASTRO))
    root = base / "storage"
    assert home == root / "home" / "alice"
    assert mode_owner(home) == (0o700, UID, UID)
    group_dir = root / "groups" / "astro"
    assert mode_owner(group_dir) == (0o2770, 0, ASTRO.gid)
    link = home / "groups" / "astro"
    assert link.is_symlink()
    assert os.readlink(link) == str(group_dir)
    assert mode_owner(home / "groups") == (0o755, UID, UID)
    assert mode_owner(root) == (0o755, 0, 0)


def test_provision_is_idempotent_and_repairs_modes(service):
    home = service.provision(user(ASTRO))
    (home / "notes.txt").write_text("mine")
    group_dir = service.config.group_path("astro")
    os.chmod(home, 0o755)
    os.chmod(group_dir, 0o777)
    os.chown(group_dir, 0, 0)
    assert service.provision(user(ASTRO)) == home
    assert mode_owner(home) == (0o700, UID, UID)
    assert mode_owner(group_dir) == (0o2770, 0, ASTRO.gid)
    assert (home / "notes.txt").read_text() == "mine"


def test_shared_volume_links(base):
    cfg = VolumesConfig(
        root=base / "storage", shared=[SharedVolume(name="public", path=Path("/data/public"))]
    )
    home = VolumeService(cfg, as_root=True).provision(user())
    assert os.readlink(home / "shared" / "public") == "/data/public"


def test_groups_symlink_to_etc_is_refused(service):
    home = service.provision(user())
    (home / "groups").rmdir()
    (home / "groups").symlink_to("/etc")  # what the user did, in their own home
    before = sorted(os.listdir("/etc"))
    with pytest.raises(StorageError, match="'groups' in the home is not a directory"):
        service.provision(user(ASTRO))
    assert sorted(os.listdir("/etc")) == before
    assert not Path("/etc/astro").exists()
    assert os.readlink(home / "groups") == "/etc"


def test_groups_symlink_to_etc_is_refused_without_groups(service):
    home = service.provision(user())
    (home / "groups").rmdir()
    (home / "groups").symlink_to("/etc")
    with pytest.raises(StorageError, match="'groups' in the home is not a directory"):
        service.provision(user())


def test_home_that_is_a_symlink_is_refused(service, base):
    service.config.home_path("alice").parent.mkdir(parents=True)
    service.config.home_path("alice").symlink_to(base)
    with pytest.raises(StorageError, match="should be a directory"):
        service.provision(user())
    assert mode_owner(base) == (0o755, 0, 0)


def test_removed_group_loses_its_link_but_files_stay(service):
    home = service.provision(user(ASTRO, OPTICS))
    optics_dir = service.config.group_path("optics")
    (optics_dir / "data.txt").write_text("results")
    (home / "groups" / "notes.txt").write_text("a file of the user's")
    (home / "groups" / "mine").symlink_to("/usr/share")

    service.provision(user(ASTRO))
    assert sorted(os.listdir(home / "groups")) == ["astro", "mine", "notes.txt"]
    assert (optics_dir / "data.txt").read_text() == "results"
    assert os.readlink(home / "groups" / "mine") == "/usr/share"

    service.provision(user())
    assert sorted(os.listdir(home / "groups")) == ["mine", "notes.txt"]
    assert service.config.group_path("astro").is_dir()


def test_removed_last_group_with_custom_link_dir(base):
    cfg = VolumesConfig(root=base / "storage", group_link="projects/{group}")
    svc = VolumeService(cfg, as_root=True)
    home = svc.provision(user(ASTRO))
    assert os.readlink(home / "projects" / "astro") == str(svc.config.group_path("astro"))
    svc.provision(user())
    assert os.listdir(home / "projects") == []


def test_check_root_creates_the_root(base):
    svc = VolumeService(VolumesConfig(root=base / "a" / "b"), as_root=True)
    svc.check_root()
    assert (base / "a" / "b").is_dir()


@pytest.mark.parametrize("under", ["/tmp", "/dev/shm"])
def test_check_root_refuses_private_dirs(under):
    root = Path(under) / f"sciplat-unit-{secrets.token_hex(4)}"
    with pytest.raises(StorageError, match=r"is under /tmp or /dev/shm.* such as /srv/sciplat"):
        VolumeService(VolumesConfig(root=root), as_root=True).check_root()
    assert not root.exists()


def test_check_root_under_tmp_is_fine_when_not_root(tmp_path):
    VolumeService(VolumesConfig(root=tmp_path / "r"), as_root=False).check_root()
    assert (tmp_path / "r").is_dir()


def test_check_root_refuses_a_symlink_into_tmp(base):
    target = Path(tempfile.mkdtemp(prefix="sciplat-unit-", dir="/tmp"))
    try:
        os.chmod(target, 0o755)
        (base / "link").symlink_to(target)
        with pytest.raises(StorageError, match="under /tmp"):
            VolumeService(VolumesConfig(root=base / "link" / "r"), as_root=True).check_root()
    finally:
        shutil.rmtree(target)


def test_check_root_refuses_an_untraversable_ancestor(base):
    closed = base / "closed"
    closed.mkdir()
    os.chmod(closed, 0o700)
    with pytest.raises(StorageError) as info:
        VolumeService(VolumesConfig(root=closed / "root"), as_root=True).check_root()
    assert f"{closed} is not traversable by others (mode 0o700)" in info.value.message
    assert "chmod o+x" in info.value.message


def test_check_root_refuses_an_untraversable_root(base):
    root = base / "root"
    root.mkdir(mode=0o750)
    os.chmod(root, 0o750)
    with pytest.raises(StorageError, match=f"{root} is not traversable"):
        VolumeService(VolumesConfig(root=root), as_root=True).check_root()
