"""sciplat/volumes/storage_limits.py as root on this host: real ext4 images on loop devices,
real writes by the users' UIDs, real mount namespaces holding an image."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import string
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sciplat.config import VolumesConfig
from sciplat.identity.models import Group, User
from sciplat.quotas.errors import QuotaExceededError, StorageLimitError, StorageShrinkError
from sciplat.quotas.storage import ext4, mounts
from sciplat.volumes.service import VolumeService
from sciplat.volumes.storage_limits import (
    LoopImageLimits,
    ReportOnly,
    detect_storage_limits,
)
from tests.conftest import needs_root
from tests.support.platform import wait_for

pytestmark = needs_root

MiB = 1024**2
ALICE = User("alice", 900711, 900711)
BOB = User("bob", 900712, 900712)
PYTHON = "/usr/bin/python3"  # readable by every UID, unlike the venv under /root or /work

WRITER = """
import errno, os, sys
path, size = sys.argv[1], int(sys.argv[2])
chunk = os.urandom(1 << 20)
try:
    with open(path, "wb") as f:
        for _ in range(size // len(chunk)):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
except OSError as exc:
    print(errno.errorcode[exc.errno])
else:
    print("ok")
"""


def write_as(user: User, path: Path, size: int, groups: tuple[int, ...] = ()) -> str:
    """Write ``size`` random bytes to ``path`` as ``user`` (with supplementary ``groups``);
    "ok" or the errno name."""
    proc = subprocess.run(
        [PYTHON, "-c", WRITER, str(path), str(size)],
        user=user.uid, group=user.gid, extra_groups=list(groups), cwd="/",
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return proc.stdout.strip()


def loop_lines(root: Path) -> list[str]:
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(root) in line]


def cleanup(root: Path) -> None:
    """Unmount everything below ``root``, detach its images' loop devices, delete it."""
    below = [m.mount_point for m in mounts.read_mounts() if m.mount_point.is_relative_to(root)]
    for point in sorted(below, key=lambda p: len(p.parts), reverse=True):
        subprocess.run(["umount", "-l", str(point)], check=False)
    for line in loop_lines(root):
        subprocess.run(["losetup", "-d", line.split(":")[0]], check=False)
    shutil.rmtree(root)


@pytest.fixture
def root() -> Iterator[Path]:
    """/srv/sciplat-quota-test-<random> (not /tmp: labs get a private /tmp)."""
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
    path = Path(f"/srv/sciplat-quota-test-{suffix}")
    path.mkdir(mode=0o755)
    try:
        yield path
    finally:
        cleanup(path)
        assert not loop_lines(path)


@pytest.fixture
def limits() -> dict[str, int | None]:
    return {}


@pytest.fixture
def backend(root: Path, limits: dict[str, int | None]) -> LoopImageLimits:
    volumes = VolumesConfig(root=root / "storage")
    return LoopImageLimits(
        volumes, lambda user: limits.get(user.name), "test", lambda g: limits.get(f"group:{g}")
    )


def snapshot(top: Path) -> dict[str, tuple[int, int, int, int, str]]:
    """Every entry below ``top``: mode, owner, group, size, content or link target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            if rel == "lost+found":
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                extra = Path(path).read_bytes().hex()
            else:
                extra = ""
            found[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, extra)
    return found


def test_this_host_uses_loop_images(root):
    backend = detect_storage_limits(VolumesConfig(root=root), True, lambda user: None)
    assert isinstance(backend, LoopImageLimits)
    assert "ext4 image loop-mounted" in backend.describe()
    assert backend.describe().startswith("loop-image (enforcing)")


def test_full_home_stops_writes_while_another_user_still_writes(backend, limits, root):
    limits.update(alice=20 * MiB, bob=20 * MiB)
    for user in (ALICE, BOB):
        status = backend.apply(user)
        assert status.note == ""
        assert status.capacity is not None
        assert 10 * MiB < status.capacity <= 20 * MiB
    home = backend.home(ALICE)
    assert os.path.ismount(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home.stat().st_uid, home.stat().st_gid) == (ALICE.uid, ALICE.gid)

    assert write_as(ALICE, home / "big", 30 * MiB) in ("ENOSPC", "EDQUOT")
    assert write_as(BOB, backend.home(BOB) / "fine", 5 * MiB) == "ok"
    fraction = backend.usage_fraction(ALICE)
    assert fraction is not None
    assert fraction > 0.9
    assert "% full" in (backend.warning(ALICE) or "")
    assert backend.warning(BOB) is None
    assert backend.used(BOB) >= 5 * MiB


def test_raising_the_limit_grows_the_image(backend, limits):
    limits["alice"] = 20 * MiB
    backend.apply(ALICE)
    home = backend.home(ALICE)
    assert write_as(ALICE, home / "first", 8 * MiB) == "ok"
    assert write_as(ALICE, home / "second", 16 * MiB) == "ENOSPC"
    before = (home / "first").read_bytes()

    limits["alice"] = 48 * MiB
    status = backend.apply(ALICE)
    assert status.note == ""
    assert status.capacity is not None
    assert status.capacity > 40 * MiB
    assert ext4.info(backend.image(ALICE)).size == 48 * MiB
    assert write_as(ALICE, home / "second", 16 * MiB) == "ok"
    assert (home / "first").read_bytes() == before


def test_existing_files_are_kept_when_the_image_is_enabled(backend, limits, root):
    home = backend.home(ALICE)
    (home / "project" / "empty").mkdir(parents=True)
    (home / "project" / "notes.txt").write_text("keep me\n")
    (home / "project" / "data.bin").write_bytes(os.urandom(3 * MiB))
    os.link(home / "project" / "data.bin", home / "same-data")
    os.symlink("project/notes.txt", home / "notes")
    os.symlink("/srv/nowhere", home / "dangling")
    with open(home / "sparse", "wb") as f:
        f.truncate(64 * MiB)  # bigger than the image, but holds nothing
    os.chmod(home / "project" / "notes.txt", 0o640)
    os.chmod(home / "project", 0o2750)
    for path in [home, *home.rglob("*")]:
        os.chown(path, ALICE.uid, ALICE.gid, follow_symlinks=False)
    os.chmod(home, 0o700)
    (home / "root-owned").write_text("the platform's\n")
    before = snapshot(home)

    limits["alice"] = 32 * MiB
    backend.apply(ALICE)

    assert os.path.ismount(home)
    assert snapshot(home) == before
    assert os.stat(home / "same-data").st_ino == os.stat(home / "project" / "data.bin").st_ino
    assert (home / "sparse").stat().st_blocks == 0
    assert sorted(p.name for p in home.parent.iterdir()) == ["alice"]  # nothing set aside
    assert write_as(ALICE, home / "more", 40 * MiB) == "ENOSPC"


def test_a_home_too_big_for_its_limit_is_left_alone(backend, limits, root):
    home = backend.home(ALICE)
    home.mkdir(parents=True)
    (home / "data").write_bytes(os.urandom(24 * MiB))
    before = snapshot(home)
    limits["alice"] = 20 * MiB
    with pytest.raises(StorageShrinkError, match="holds 24 MiB, more than its storage quota"):
        backend.apply(ALICE)
    assert not os.path.ismount(home)
    assert snapshot(home) == before
    assert not backend.image(ALICE).exists()
    assert not loop_lines(root)


def test_shrinking_only_when_it_fits(backend, limits):
    limits["alice"] = 48 * MiB
    backend.apply(ALICE)
    home = backend.home(ALICE)
    assert write_as(ALICE, home / "data", 4 * MiB) == "ok"
    before = (home / "data").read_bytes()

    limits["alice"] = 24 * MiB
    assert backend.apply(ALICE).note == ""
    assert ext4.info(backend.image(ALICE)).size == 24 * MiB
    assert backend.image(ALICE).stat().st_size == 24 * MiB
    assert (home / "data").read_bytes() == before

    assert write_as(ALICE, home / "more", 10 * MiB) == "ok"
    limits["alice"] = 16 * MiB
    with pytest.raises(StorageShrinkError, match=r"to 16 MiB: it holds .* smallest it can become"):
        backend.apply(ALICE)
    assert os.path.ismount(home)
    assert ext4.info(backend.image(ALICE)).size == 24 * MiB
    assert (home / "data").read_bytes() == before


def test_a_lab_holding_the_image_defers_an_offline_resize(backend, limits):
    limits["alice"] = 20 * MiB
    backend.apply(ALICE)
    # a lab: a process in its own mount namespace, holding a copy of the home's mount
    lab = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "120"])
    try:
        ours = os.readlink("/proc/self/ns/mnt")
        wait_for(lambda: os.readlink(f"/proc/{lab.pid}/ns/mnt") != ours
                 and Path(f"/proc/{lab.pid}/comm").read_text().strip() == "sleep",
                 timeout=10, what="the lab's mount namespace")  # fmt: skip
        limits["alice"] = 40 * MiB
        status = backend.apply(ALICE)
        assert "in use by a running lab" in status.note
        assert os.path.ismount(backend.home(ALICE))
        assert len(ext4.loop_devices(backend.image(ALICE))) == 1  # the same device, reused
        assert ext4.info(backend.image(ALICE)).size == 20 * MiB
    finally:
        lab.send_signal(signal.SIGKILL)
        lab.wait()
    status = backend.apply(ALICE)
    assert status.note == ""
    assert ext4.info(backend.image(ALICE)).size == 40 * MiB


def test_release_leaves_no_mounts_or_loop_devices(backend, limits, root):
    limits.update(alice=20 * MiB, bob=20 * MiB)
    backend.apply(ALICE)
    backend.apply(BOB)
    assert len(loop_lines(root)) == 2
    (backend.home(ALICE) / "kept").write_text("still here\n")
    backend.release(ALICE)
    backend.release(BOB)
    assert not loop_lines(root)
    assert not os.path.ismount(backend.home(ALICE))
    assert backend.used(ALICE) > 0  # measured from the image while unmounted
    backend.apply(ALICE)
    assert (backend.home(ALICE) / "kept").read_text() == "still here\n"


def test_an_interrupted_move_is_undone_then_redone(backend, limits):
    home = backend.home(ALICE)
    home.mkdir(parents=True)
    (home / "precious").write_text("do not lose\n")
    aside = home.with_name(".alice.pre-image")
    home.rename(aside)
    home.mkdir()
    backend.images.mkdir(parents=True)
    backend.image(ALICE).write_bytes(b"half-made image")
    limits["alice"] = 20 * MiB
    backend.apply(ALICE)
    assert os.path.ismount(home)
    assert (home / "precious").read_text() == "do not lose\n"
    assert not aside.exists()
    assert backend.image(ALICE).with_name("alice.ext4.interrupted").exists()


def test_no_limit_keeps_an_existing_image(backend, limits):
    limits["alice"] = 20 * MiB
    backend.apply(ALICE)
    del limits["alice"]
    backend.release(ALICE)
    status = backend.apply(ALICE)
    assert os.path.ismount(backend.home(ALICE))
    assert "keeps its image of 20 MiB" in status.note


def test_no_limit_and_no_image_just_measures(backend):
    status = backend.apply(ALICE)
    assert (status.limit, status.capacity, status.used) == (None, None, 0)
    assert not backend.images.joinpath("alice.ext4").exists()


def test_zero_and_tiny_limits_are_refused(backend, limits):
    limits["alice"] = 0
    with pytest.raises(QuotaExceededError, match="not allowed for your account"):
        backend.apply(ALICE)
    limits["alice"] = 4 * MiB
    with pytest.raises(StorageLimitError, match="below the smallest storage image"):
        backend.apply(ALICE)


def test_files_under_an_unmounted_image_are_not_hidden(backend, limits):
    limits["alice"] = 20 * MiB
    backend.apply(ALICE)
    backend.release(ALICE)
    (backend.home(ALICE) / "stray").write_text("written while unmounted\n")
    with pytest.raises(StorageLimitError, match="holds files although its content lives"):
        backend.apply(ALICE)


def test_report_only_measures_and_warns(root, limits):
    limits["alice"] = 10 * MiB
    backend = ReportOnly(VolumesConfig(root=root), lambda u: limits.get(u.name), "not root")
    home = backend.home(ALICE)
    home.mkdir(parents=True)
    (home / "data").write_bytes(os.urandom(12 * MiB))
    status = backend.apply(ALICE)
    assert status.used >= 12 * MiB
    assert status.capacity == 10 * MiB
    assert backend.describe() == "report-only (not enforcing): not root"
    assert backend.warning(ALICE) is not None


ASTRO = Group("astro", 900791)
OPTICS = Group("optics", 900792)


def group_dir(backend: LoopImageLimits, group: Group) -> Path:
    """The group's directory as VolumeService makes it when no limit applies."""
    return VolumeService(backend.volumes, as_root=True).provision_group(group)


def test_full_group_directory_stops_members_writes_only_there(backend, limits):
    limits.update({"group:astro": 20 * MiB})
    status = backend.apply_group(ASTRO)
    assert status.note == "" and status.offered
    shared = backend.volumes.group_path("astro")
    assert os.path.ismount(shared)
    st = shared.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2770, 0, ASTRO.gid)
    assert backend.image_of(backend.group_volume(ASTRO)).parent.name == "groups"

    # ALICE and BOB are both members: together they cannot go past the group's limit
    assert write_as(ALICE, shared / "a", 8 * MiB, (ASTRO.gid,)) == "ok"
    assert write_as(BOB, shared / "b", 16 * MiB, (ASTRO.gid,)) in ("ENOSPC", "EDQUOT")
    assert (shared / "a").stat().st_gid == ASTRO.gid  # setgid directory: files stay shared
    # another group without a limit, and the members' homes, are not affected
    assert backend.apply_group(OPTICS).capacity is None
    other = group_dir(backend, OPTICS)
    assert write_as(ALICE, other / "c", 24 * MiB, (OPTICS.gid,)) == "ok"
    assert not os.path.ismount(other)
    assert backend.group_used(ASTRO) >= 8 * MiB
    assert "group directory of astro" in (backend.group_warning(ASTRO) or "")


def test_a_running_member_defers_the_group_image_until_it_is_gone(backend, limits):
    shared = group_dir(backend, ASTRO)  # no limit yet: a plain directory
    (shared / "results.txt").write_text("computed yesterday\n")
    holder = subprocess.Popen(
        [PYTHON, "-c", "import time; time.sleep(60)"],
        user=BOB.uid, group=BOB.gid, extra_groups=[ASTRO.gid], cwd="/",
    )  # fmt: skip
    try:
        wait_for(lambda: holder.pid in mounts.processes_with_group(ASTRO.gid), 10)
        limits.update({"group:astro": 24 * MiB})
        status = backend.apply_group(ASTRO)
        assert "takes effect once no lab of its members runs" in status.note
        assert not os.path.ismount(shared)
        assert status.capacity is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    status = backend.apply_group(ASTRO)
    assert status.note == ""
    assert os.path.ismount(shared)
    assert (shared / "results.txt").read_text() == "computed yesterday\n"
    assert write_as(ALICE, shared / "big", 30 * MiB, (ASTRO.gid,)) in ("ENOSPC", "EDQUOT")


def test_zero_group_storage_offers_no_directory(backend, limits):
    limits.update({"group:astro": 0})
    status = backend.apply_group(ASTRO)
    assert not status.offered
    assert "group_storage quota is 0" in status.note
    assert not backend.volumes.group_path("astro").exists()


def test_release_unmounts_group_images(backend, limits, root):
    limits.update({"group:astro": 20 * MiB})
    backend.apply_group(ASTRO)
    backend.release_group(ASTRO)
    assert not os.path.ismount(backend.volumes.group_path("astro"))
    assert not loop_lines(root)
