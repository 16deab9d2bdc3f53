"""Pre-forked labs: a lab forked from its environment's resident parent carries nothing of the
parent or of another user, runs with its user's ids and limits, and outlives the parent.

The labs here are started by the local backend itself (real parent, real cgroups, real
privilege drop) against a stand-in for the hub's API; the last test goes through a real hub.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sciplat.labs.local.backend import LocalBackend
from sciplat.labs.local.storage import cgroups
from sciplat.labs.local.storage.prefork import (
    PARENT_ENV,
    PreforkServers,
    lab_environment,
    stamp,
)
from sciplat.labs.local.storage.processes import start_time
from sciplat.labs.models import LabSpec, LabState
from tests.conftest import needs_root
from tests.support.platform import (
    TEST_STORAGE,
    clone_environment,
    hub_api_stub,
    random_suffix,
    remove_test_cgroups,
    standalone_lab_spec,
    wait_for,
)
from tests.support.platform import (
    lab_environment as shared_environment,
)

pytestmark = [needs_root, pytest.mark.slow]

PARENT_READY = 180.0  # s: the parent imports the server's code once (slow on a loaded machine)


@dataclass
class Labs:
    root: Path
    env: Path
    api: str
    prefork: PreforkServers
    backend: LocalBackend
    running: list[LabState] = field(default_factory=list)

    def start(self, name: str, spec: LabSpec | None = None) -> tuple[LabSpec, LabState]:
        """Start a lab through the backend and wait until its API answers."""
        uid = 4_100_000 + secrets.randbelow(90_000) * 10
        spec = spec or standalone_lab_spec(
            self.env, self.root, name, uid, self.api, secrets.token_hex(24)
        )
        state = asyncio.run(self.backend.start(spec, lambda *_: None))
        self.running.append(state)
        url = f"http://127.0.0.1:{spec.port}/user/{name}/api"
        wait_for(lambda: answers(url), 120, 0.02, f"the lab {name} ({spec.log_path})")
        return spec, state

    def stop(self, state: LabState) -> None:
        asyncio.run(self.backend.stop(state, now=True))
        self.running.remove(state)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def labs() -> Iterator[Labs]:
    run_id = random_suffix()
    root = TEST_STORAGE / run_id
    root.mkdir(parents=True, mode=0o755)
    (root / "logs").mkdir(mode=0o700)
    driver = cgroups.detect(f"sciplat-test-{run_id}")
    if driver is None:
        pytest.skip("no writable cgroup hierarchy")
    prefork = PreforkServers(root / "run" / "prefork", root / "logs" / "prefork")
    env = shared_environment()
    try:
        assert prefork.wait_ready(env, PARENT_READY), (root / "logs" / "prefork").iterdir()
        with hub_api_stub() as api:
            labs = Labs(root, env, api, prefork, LocalBackend(driver, prefork=prefork))
            try:
                yield labs
            finally:
                for state in list(labs.running):
                    labs.stop(state)
    finally:
        prefork.stop_all()
        shutil.rmtree(root, ignore_errors=True)
        remove_test_cgroups(run_id)


def status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def parent_pid(labs: Labs, env: Path | None = None) -> int:
    env = env or labs.env
    return next(pid for pid, e in labs.prefork.parents() if e == env)


def fd_targets(pid: int) -> dict[str, str]:
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
    return out


def memory_holds(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the writable memory of ``pid`` (heap, stacks,
    anonymous mappings: where a request or a token would be)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if "rw" not in fields[1][:2] or (len(fields) > 5 and fields[5].startswith("/")):
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except OSError:
                continue
    return False


# -- which commands are forked ----------------------------------------------------------------
def test_only_the_environments_own_lab_server_is_forked(labs: Labs, tmp_path: Path) -> None:
    server = labs.env / "bin" / "jupyterhub-singleuser"
    assert lab_environment((str(server),)) == labs.env
    assert lab_environment((str(server), "--debug")) is None
    assert lab_environment((str(labs.env / "bin" / "python"), "-m", "papermill")) is None
    fake = tmp_path / "bin" / "jupyterhub-singleuser"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    assert lab_environment((str(fake),)) is None

    # a job's command (not the lab server) takes the plain launcher, in its cgroup as before
    base = standalone_lab_spec(labs.env, labs.root, "job", 4_099_990, labs.api, "t")
    job = LabSpec(**{**base.__dict__, "command": (
        str(labs.env / "bin" / "python"), "-c", "import time; time.sleep(60)")})  # fmt: skip
    state = asyncio.run(labs.backend.start(job, lambda *_: None))
    try:
        assert state.extra["started_by"] == "launcher"
        wait_for(lambda: status(state.pid)["Uid"].split()[0] == "4099990", 30, 0.02, "the job")
    finally:
        asyncio.run(labs.backend.stop(state, now=True))


# -- identity and limits ----------------------------------------------------------------------
def test_forked_lab_runs_as_its_user_with_its_limits(labs: Labs) -> None:
    spec, state = labs.start("ids")
    assert state.extra["started_by"] == "pre-forked"
    parent = parent_pid(labs)
    st = status(state.pid)
    assert st["PPid"] == str(parent)  # the parent reaps it; the hub records the lab's own pid
    assert start_time(state.pid) == state.start_time
    assert st["Uid"].split() == [str(spec.uid)] * 4
    assert st["Gid"].split() == [str(spec.gid)] * 4
    assert st["Groups"].split() == [str(spec.gid)]
    assert st["NoNewPrivs"] == "1"
    assert st["Umask"] == "0077"
    assert st["CapEff"] == "0000000000000000"
    assert os.getsid(state.pid) == state.pid  # its own session: signals to the parent miss it
    assert os.readlink(f"/proc/{state.pid}/cwd") == str(spec.home)
    assert os.readlink(f"/proc/{state.pid}/ns/mnt") != os.readlink(f"/proc/{parent}/ns/mnt")
    driver = labs.backend.cgroups
    assert driver is not None
    assert state.pid in driver.pids(state.cgroup)
    cgroup = Path(f"/proc/{state.pid}/cgroup").read_text()
    assert f"sciplat-test-{labs.root.name}/{spec.slug}" in cgroup
    for path, value in driver.limit_writes(state.cgroup, spec.limits):
        if path.exists() and "memsw" not in path.name:
            assert path.read_text().split()[0] == value.split()[0], path
    # its /tmp is its own tmpfs, not the parent's
    mounts = Path(f"/proc/{state.pid}/mountinfo").read_text()
    assert re.search(r" /tmp .* - tmpfs ", mounts)
    labs.stop(state)


# -- nothing inherited ------------------------------------------------------------------------
def test_forked_lab_carries_nothing_of_the_parent_or_another_lab(labs: Labs) -> None:
    spec_a, a = labs.start("alice")
    spec_b, b = labs.start("bob")
    parent = parent_pid(labs)
    token_a = spec_a.env["JUPYTERHUB_API_TOKEN"].encode()
    token_b = spec_b.env["JUPYTERHUB_API_TOKEN"].encode()

    # memory: the parent never read a request; bob's lab has nothing of alice's
    assert memory_holds(a.pid, token_a)  # the check can see a token where there is one
    assert not memory_holds(b.pid, token_a)
    assert not memory_holds(parent, token_a)
    assert not memory_holds(parent, token_b)

    # file descriptors: /dev/null, its own log, and what the server opened itself
    parent_fds = set(fd_targets(parent).values()) - {"/dev/null"}
    for spec, lab in ((spec_a, a), (spec_b, b)):
        fds = fd_targets(lab.pid)
        assert fds["0"] == "/dev/null"
        assert fds["1"] == fds["2"] == str(spec.log_path)
        assert not parent_fds & set(fds.values()), "an fd of the parent leaked into a lab"
        files = {t for t in fds.values() if t.startswith("/") and t != "/dev/null"}
        assert files <= {str(spec.log_path)} | {t for t in files if "inotify" in t}
    assert str(spec_a.log_path) not in fd_targets(b.pid).values()

    # environment: the parent's start-up block (all /proc/<pid>/environ can show of a fork)
    # holds no user's values; the lab's own environment is checked through a kernel below
    environ = Path(f"/proc/{b.pid}/environ").read_bytes().split(b"\0")
    names = {e.split(b"=", 1)[0].decode() for e in environ if e}
    assert names <= set(PARENT_ENV), names

    labs.stop(a)
    labs.stop(b)


# -- the parent's life ------------------------------------------------------------------------
def test_parent_restarts_when_its_environment_changes_and_labs_outlive_it(labs: Labs) -> None:
    env = clone_environment(labs.env, labs.root / "env-clone")
    assert labs.prefork.wait_ready(env, PARENT_READY)
    old_parent = parent_pid(labs, env)
    uid = 4_100_000 + secrets.randbelow(90_000) * 10
    spec = standalone_lab_spec(env, labs.root, "clone", uid, labs.api, secrets.token_hex(24))
    spec, lab = labs.start("clone", spec)
    assert lab.extra["started_by"] == "pre-forked"

    # pip changes site-packages when it installs: the stamp moves, the next start is a plain
    # one and replaces the parent; the lab of the old parent keeps running
    site = next(env.glob("lib/python3*/site-packages"))
    before = stamp(env)
    os.utime(site, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert stamp(env) != before
    spec2 = standalone_lab_spec(env, labs.root, "clone2", uid + 1, labs.api, "t2")
    spec2, lab2 = labs.start("clone2", spec2)
    assert lab2.extra["started_by"] == "launcher"
    wait_for(lambda: start_time(old_parent) is None, 30, 0.05, "the stale parent to stop")
    new_parent = parent_pid(labs, env)
    assert new_parent != old_parent
    assert answers(f"http://127.0.0.1:{spec.port}/user/clone/api")

    # killing the parent outright kills no lab either
    assert labs.prefork.wait_ready(env, PARENT_READY)
    spec3, lab3 = labs.start("clone3", standalone_lab_spec(
        env, labs.root, "clone3", uid + 2, labs.api, "t3"))  # fmt: skip
    assert lab3.extra["started_by"] == "pre-forked"
    os.kill(new_parent, signal.SIGKILL)
    wait_for(lambda: start_time(new_parent) is None, 30, 0.05, "the parent to die")
    for s, state in ((spec, lab), (spec3, lab3)):
        assert start_time(state.pid) == state.start_time
        assert answers(f"http://127.0.0.1:{s.port}/user/{s.user}/api")
    assert asyncio.run(labs.backend.poll(lab3)) is None


def _kernel_env(platform: Any, user: str, token: str) -> dict[str, str]:
    from tests.support.kernel import LabKernel

    kernel = LabKernel(platform.url, user, token)
    try:
        out = kernel.run("import os, json; print(json.dumps(dict(os.environ)))")
    finally:
        kernel.close()
    import json

    return dict(json.loads(out))


def test_hub_starts_forked_labs_with_only_the_users_environment() -> None:
    from tests.support.platform import running_platform

    with running_platform() as platform:
        data = platform.data_dir
        pf = PreforkServers(data / "run" / "prefork", data / "logs" / "prefork")
        assert pf.wait_ready(shared_environment(), PARENT_READY)  # warmed by `sciplat up`
        admin = platform.token(platform.add_user("pfadmin", admin=True), "--admin")
        users = [platform.add_user(n) for n in ("pfa", "pfb")]
        tokens = {u: platform.token(u) for u in users}
        for u in users:
            platform.start_lab(u, tokens[u])
        envs = {u: _kernel_env(platform, u, tokens[u]) for u in users}
        for u in users:
            state = platform.lab_state(u, admin)["servers"][""]["state"]["lab"]
            assert state["extra"]["started_by"] == "pre-forked"
            env = envs[u]
            assert env["USER"] == env["JUPYTERHUB_USER"] == u
            other = next(o for o in users if o != u)
            assert tokens[other] not in "".join(env.values())
            assert not {k for k in env if k.startswith(("SCIPLAT_DATA", "SCIPLAT_CGROUP"))}
            assert env["HOME"].endswith(u)
        for u in users:
            platform.stop_lab(u, tokens[u])
