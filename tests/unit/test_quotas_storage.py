"""Pure parts of the quota storage: mount table, dumpe2fs, command builders, backend choice,
and directory walking, copying and comparing (any user, in a temporary directory)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sciplat.quotas.errors import StorageLimitError
from sciplat.quotas.models import format_amount, format_bytes
from sciplat.quotas.storage import ext4, mounts, tree, xfs
from sciplat.volumes.storage_limits import choose_backend

MOUNTINFO = r"""22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
30 22 0:26 / /proc rw,nosuid shared:5 - proc proc rw
41 22 253:3 / /srv rw,noatime shared:20 - xfs /dev/mapper/srv rw,attr2,inode64,prjquota
42 41 7:0 / /srv/home/al\040ice rw,nosuid,nodev shared:30 - ext4 /dev/loop0 rw
garbage line
"""


def test_parse_mountinfo():
    entries = mounts.parse_mountinfo(MOUNTINFO)
    assert [e.mount_point for e in entries] == [
        Path("/"),
        Path("/proc"),
        Path("/srv"),
        Path("/srv/home/al ice"),
    ]
    srv = entries[2]
    assert (srv.fstype, srv.source) == ("xfs", "/dev/mapper/srv")
    assert {"prjquota", "noatime", "rw"} <= srv.options
    assert {"nosuid", "nodev"} <= entries[3].options


def test_mount_of_picks_the_deepest_mount():
    entries = mounts.parse_mountinfo(MOUNTINFO)
    assert mounts.mount_of(Path("/srv/sciplat/images"), entries).mount_point == Path("/srv")
    assert mounts.mount_of(Path("/srv/home/al ice/x"), entries).source == "/dev/loop0"
    assert mounts.mount_of(Path("/var/lib"), entries).mount_point == Path("/")
    assert mounts.mounted_at(Path("/srv"), entries).fstype == "xfs"
    assert mounts.mounted_at(Path("/srv/home"), entries) is None


def test_root_is_a_mount_here():
    assert mounts.mounted_at(Path("/")) is not None


DUMPE2FS = """\
Filesystem volume name:   <none>
Filesystem state:         clean
Block count:              262144
Reserved block count:     0
Free blocks:              249189
Block size:               4096
"""


def test_parse_dumpe2fs():
    info = ext4.parse_dumpe2fs(DUMPE2FS)
    assert info == ext4.ImageInfo(262144, 249189, 4096)
    assert info.size == 1024**3
    assert info.used == (262144 - 249189) * 4096
    with pytest.raises(StorageLimitError, match="unexpected dumpe2fs output"):
        ext4.parse_dumpe2fs("Block count: 3\n")


def test_mkfs_command():
    assert ext4.mkfs_command(Path("/srv/s/images/alice.ext4"), 200001, 200001) == [
        "mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096",
        "-E", "root_owner=200001:200001", "/srv/s/images/alice.ext4",
    ]  # fmt: skip


def test_xfs_commands():
    assert xfs.setup_command(Path("/srv"), Path("/srv/sciplat/home/alice"), 200001) == [
        "xfs_quota", "-x", "-c", "project -s -p /srv/sciplat/home/alice 200001", "/srv",
    ]  # fmt: skip
    assert xfs.limit_command(Path("/srv"), 200001, 10 * 1024**3) == [
        "xfs_quota", "-x", "-c", "limit -p bhard=10737418240 200001", "/srv",
    ]  # fmt: skip
    assert xfs.limit_command(Path("/srv"), 7, None)[3] == "limit -p bhard=0 7"
    with pytest.raises(StorageLimitError, match="white space"):
        xfs.setup_command(Path("/srv"), Path("/srv/my home/alice"), 7)


def test_project_id_of_an_ordinary_directory(tmp_path):
    assert xfs.project_id(tmp_path) == 0


ALL_TOOLS = dict.fromkeys([*ext4.TOOLS, "xfs_quota"], True)
XFS = mounts.MountEntry(Path("/srv"), "xfs", "/dev/sdb", frozenset({"rw", "prjquota"}))
XFS_PLAIN = mounts.MountEntry(Path("/srv"), "xfs", "/dev/sdb", frozenset({"rw"}))
EXT4 = mounts.MountEntry(Path("/"), "ext4", "/dev/vda", frozenset({"rw"}))


@pytest.mark.parametrize(
    ("as_root", "mount", "tools", "loop", "kind", "words"),
    [
        (False, XFS, ALL_TOOLS, True, "report-only", "not running as root"),
        (True, XFS, ALL_TOOLS, True, "xfs-project", "/srv (xfs) is XFS mounted with project"),
        (True, XFS, {**ALL_TOOLS, "xfs_quota": False}, True, "loop-image", "install xfsprogs"),
        (True, XFS_PLAIN, ALL_TOOLS, True, "loop-image", "/srv (xfs) has no project quotas"),
        (True, EXT4, ALL_TOOLS, True, "loop-image", "ext4 image loop-mounted"),
        (True, EXT4, {**ALL_TOOLS, "resize2fs": False}, True, "report-only", "install e2fsprogs"),
        (True, EXT4, ALL_TOOLS, False, "report-only", "no loop devices"),
    ],
)
def test_choose_backend(as_root, mount, tools, loop, kind, words):
    got_kind, reason = choose_backend(as_root, mount, tools, loop)
    assert got_kind == kind
    assert words in reason


def test_measure_counts_allocated_blocks_once(tmp_path):
    (tmp_path / "d").mkdir()
    data = tmp_path / "d" / "data"
    data.write_bytes(os.urandom(200_000))
    os.link(data, tmp_path / "hardlink")
    os.symlink("/usr", tmp_path / "link")  # never followed
    with open(tmp_path / "sparse", "wb") as f:
        f.truncate(500 * 1024**2)
    got = tree.measure(tmp_path)
    assert 200_000 <= got.size < 300_000
    assert got.files == 2  # data (once) and sparse
    assert got.unreadable == 0
    assert tree.measure(tmp_path / "missing") == tree.TreeUsage(0, 0)


def test_copy_and_compare_trees(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("hello")
    os.chmod(src / "sub" / "a.txt", 0o640)
    os.symlink("sub/a.txt", src / "link")
    os.link(src / "sub" / "a.txt", src / "hard")
    dst.mkdir()
    tree.copy_tree(src, dst)
    assert tree.compare_trees(src, dst) == []
    assert os.stat(dst / "hard").st_ino == os.stat(dst / "sub" / "a.txt").st_ino
    (dst / "lost+found").mkdir()
    assert tree.compare_trees(src, dst) == ["lost+found: not in the original"]
    assert tree.compare_trees(src, dst, frozenset({"lost+found"})) == []
    (dst / "sub" / "a.txt").write_text("HELLO")
    assert set(tree.compare_trees(src, dst, frozenset({"lost+found"}))) == {
        "sub/a.txt: content differs",
        "hard: content differs",  # the same inode
    }
    os.unlink(dst / "link")
    assert "link: missing in the copy" in tree.compare_trees(src, dst)


def test_holds_files(tmp_path):
    (tmp_path / "groups").mkdir()
    os.symlink("/srv", tmp_path / "groups" / "astro")
    assert not tree.holds_files(tmp_path)
    (tmp_path / "notes").write_text("x")
    assert tree.holds_files(tmp_path)


def test_copy_failure_is_a_storage_error(tmp_path):
    with pytest.raises(StorageLimitError, match="cannot copy"):
        tree.copy_tree(tmp_path / "missing", tmp_path)


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("storage", 20 * 1024**2, "20 MiB"),
        ("memory", 1536 * 1024**2, "1.5 GiB"),
        ("memory", 100, "100 B"),
        ("cores", 2.5, "2.5 cores"),
        ("labs", 3, "3"),
        ("api_rate", 600, "600 requests/min"),
        ("jobs", None, "unlimited"),
    ],
)
def test_format_amount(key, value, text):
    assert format_amount(key, value) == text


def test_format_bytes_large():
    assert format_bytes(5 * 1024**5) == "5120 TiB"
