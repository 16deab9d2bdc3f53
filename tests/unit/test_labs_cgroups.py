"""sciplat/labs/local/storage/cgroups.py: the layout (pure) and real v1 cgroups (root)."""

from __future__ import annotations

import contextlib
import os
import secrets
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sciplat.labs.local.storage.cgroups import CgroupDriver, detect
from sciplat.labs.models import LabLimits
from tests.conftest import needs_root

LIMITS = LabLimits(cpu=1.5, memory=256 * 1024**2, pids=64)
ROOT = Path("/cg")


# -- layout (pure) ---------------------------------------------------------------------------


def test_v1_dirs():
    assert CgroupDriver(1, ROOT, "p").dirs("alice") == {
        "memory": Path("/cg/memory/p/alice"),
        "cpu": Path("/cg/cpu/p/alice"),
        "cpuacct": Path("/cg/cpuacct/p/alice"),
        "pids": Path("/cg/pids/p/alice"),
    }


def test_v2_dirs():
    assert CgroupDriver(2, ROOT, "p").dirs("alice--gpu") == {"unified": Path("/cg/p/alice--gpu")}


def test_v1_limit_writes(tmp_path):
    d = CgroupDriver(1, tmp_path, "p")
    assert d.limit_writes("alice", LIMITS) == [
        (tmp_path / "memory/p/alice/memory.limit_in_bytes", "268435456"),
        (tmp_path / "memory/p/alice/memory.memsw.limit_in_bytes", "268435456"),
        (tmp_path / "cpu/p/alice/cpu.cfs_period_us", "100000"),
        (tmp_path / "cpu/p/alice/cpu.cfs_quota_us", "150000"),
        (tmp_path / "pids/p/alice/pids.max", "64"),
    ]


def test_v2_limit_writes(tmp_path):
    d = CgroupDriver(2, tmp_path, "p")
    assert d.limit_writes("alice", LIMITS) == [
        (tmp_path / "p/alice/memory.max", "268435456"),
        (tmp_path / "p/alice/memory.swap.max", "0"),
        (tmp_path / "p/alice/cpu.max", "150000 100000"),
        (tmp_path / "p/alice/pids.max", "64"),
    ]


@pytest.mark.parametrize(
    ("cpu", "quota"), [(1, "100000"), (0.25, "25000"), (4, "400000"), (0.001, "1000")]
)
def test_cpu_quota(cpu, quota):
    limits = LabLimits(cpu=cpu, memory=1, pids=16)
    v1 = dict(CgroupDriver(1, ROOT, "p").limit_writes("a", limits))
    v2 = dict(CgroupDriver(2, ROOT, "p").limit_writes("a", limits))
    assert v1[Path("/cg/cpu/p/a/cpu.cfs_quota_us")] == quota
    assert v2[Path("/cg/p/a/cpu.max")] == f"{quota} 100000"


def test_procs_files():
    assert CgroupDriver(1, ROOT, "p").procs_files("a") == [
        Path(f"/cg/{c}/p/a/cgroup.procs") for c in ("memory", "cpu", "cpuacct", "pids")
    ]
    assert CgroupDriver(2, ROOT, "p").procs_files("a") == [Path("/cg/p/a/cgroup.procs")]


def test_usage_of_missing_cgroup_is_zero(tmp_path):
    usage = CgroupDriver(1, tmp_path, "p").usage("nope")
    assert (usage.memory, usage.cpu_seconds, usage.pids, usage.oom_kills) == (0, 0.0, 0, 0)
    assert CgroupDriver(1, tmp_path, "p").pids("nope") == []
    assert not CgroupDriver(1, tmp_path, "p").exists("nope")


def test_v2_usage_reads_flat_keyed_files(tmp_path):
    d = CgroupDriver(2, tmp_path, "p")
    u = tmp_path / "p" / "a"
    u.mkdir(parents=True)
    (u / "memory.current").write_text("12345\n")
    (u / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (u / "pids.current").write_text("3\n")
    (u / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n")
    usage = d.usage("a")
    assert (usage.memory, usage.cpu_seconds, usage.pids, usage.oom_kills) == (12345, 2.5, 3, 1)


def test_detect_refuses_a_directory_without_hierarchies(tmp_path):
    assert detect("p", tmp_path) is None


# -- real cgroups (v1 on this host) ----------------------------------------------------------

V1 = ("memory", "cpu", "cpuacct", "pids")


@pytest.fixture
def driver() -> Iterator[CgroupDriver]:
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(6))
    d = detect(f"sciplat-unit-{suffix}")
    assert d is not None
    try:
        yield d
    finally:
        for c in V1:
            parent = d.root / c / d.parent
            if parent.exists():
                for child in parent.iterdir():
                    if child.is_dir():
                        d.kill_all(child.name, timeout=5)
                        with contextlib.suppress(OSError):
                            child.rmdir()
                parent.rmdir()


def wait_for(condition, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@needs_root
def test_detect_finds_v1(driver):
    assert driver.version == 1
    assert driver.root == Path("/sys/fs/cgroup")
    assert driver.parent.startswith("sciplat-unit-")


@needs_root
def test_create_applies_limits(driver):
    driver.create("lab", LIMITS)
    dirs = driver.dirs("lab")
    assert all(p.is_dir() for p in dirs.values())
    assert driver.exists("lab")

    def read(c: str, f: str) -> str:
        return (dirs[c] / f).read_text().strip()

    assert read("memory", "memory.limit_in_bytes") == "268435456"
    if (dirs["memory"] / "memory.memsw.limit_in_bytes").exists():
        assert read("memory", "memory.memsw.limit_in_bytes") == "268435456"
    assert read("cpu", "cpu.cfs_period_us") == "100000"
    assert read("cpu", "cpu.cfs_quota_us") == "150000"
    assert read("pids", "pids.max") == "64"

    driver.remove("lab")
    assert not driver.exists("lab")


@needs_root
def test_process_lifecycle(driver):
    driver.create("lab", LIMITS)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        for f in driver.procs_files("lab"):
            f.write_text(str(proc.pid))
        assert driver.pids("lab") == [proc.pid]
        # the kernel's view: "ID:controller:path" per hierarchy
        where = {}
        for line in Path(f"/proc/{proc.pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(","):
                where[c] = path
        assert [where[c] for c in V1] == [f"/{driver.parent}/lab"] * 4
        usage = driver.usage("lab")
        assert usage.pids >= 1
        assert usage.oom_kills == 0

        assert driver.kill_all("lab", timeout=10)
        assert driver.pids("lab") == []
        assert proc.wait(timeout=10) == -9
        wait_for(lambda: driver.usage("lab").pids == 0, what="pids.current to drop to 0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    driver.remove("lab")
    assert not any(p.exists() for p in driver.dirs("lab").values())
    driver.remove("lab")  # idempotent


@needs_root
def test_signal_all_counts(driver):
    driver.create("lab", LIMITS)
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]
    try:
        for p in procs:
            for f in driver.procs_files("lab"):
                f.write_text(str(p.pid))
        assert driver.signal_all("lab", 15) == 2
        assert sorted(p.wait(timeout=10) for p in procs) == [-15, -15]
        assert driver.signal_all("lab", 15) == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    driver.remove("lab")


@needs_root
def test_pids_limit_is_enforced(driver):
    driver.create("lab", LabLimits(cpu=1, memory=256 * 1024**2, pids=16))
    # a shell inside the cgroup that tries to start more processes than allowed
    script = "for i in $(seq 40); do sleep 30 & done; wait"
    proc = subprocess.Popen(
        ["sh", "-c", f"read go; {script}"], stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        for f in driver.procs_files("lab"):
            f.write_text(str(proc.pid))
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        # dash gives up at the first fork the pids controller refuses
        wait_for(lambda: proc.poll() is not None, what="the shell to hit the limit")
        assert proc.returncode != 0
        assert 8 <= len(driver.pids("lab")) < 16
        assert 8 <= driver.usage("lab").pids < 16
        events = (driver.dirs("lab")["pids"] / "pids.events").read_text().split()
        assert events[0] == "max"
        assert int(events[1]) >= 1
    finally:
        driver.kill_all("lab", timeout=10)
        proc.wait(timeout=10)
    assert proc.stderr is not None
    assert "fork" in proc.stderr.read().decode().lower()  # once the sleeps are gone
    driver.remove("lab")


@needs_root
def test_create_reuses_a_leftover_with_smaller_limits(driver):
    driver.create("lab", LIMITS)
    smaller = LabLimits(cpu=0.5, memory=128 * 1024**2, pids=32)
    driver.create("lab", smaller)
    mem = driver.dirs("lab")["memory"]
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(128 * 1024**2)
    assert (driver.dirs("lab")["pids"] / "pids.max").read_text().strip() == "32"
    driver.remove("lab")


@needs_root
def test_create_reuses_a_leftover_with_bigger_limits(driver):
    driver.create("lab", LIMITS)
    bigger = LabLimits(cpu=2, memory=512 * 1024**2, pids=128)
    try:
        driver.create("lab", bigger)
        mem = driver.dirs("lab")["memory"]
        assert (mem / "memory.limit_in_bytes").read_text().strip() == str(512 * 1024**2)
    finally:
        driver.remove("lab")


@needs_root
def test_remove_keeps_a_busy_cgroup(driver):
    driver.create("lab", LIMITS)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        for f in driver.procs_files("lab"):
            f.write_text(str(proc.pid))
        with pytest.raises(OSError, match="Device or resource busy"):
            driver.remove("lab")
        assert driver.exists("lab")
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not driver.pids("lab"), what="the cgroup to empty")
    driver.remove("lab")
    assert not driver.exists("lab")


def test_detect_is_none_when_not_root():
    if os.geteuid() == 0:
        pytest.skip("runs only as a normal user")
    assert detect("p") is None
