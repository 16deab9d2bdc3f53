"""The local backend with the real hub, proxy and lab processes: identity, isolation, limits,
and labs that outlive the hub."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sciplat.labs.local.storage.processes import start_time
from tests.conftest import needs_root
from tests.support.kernel import LabKernel
from tests.support.platform import Platform, running_platform, wait_for

pytestmark = [needs_root, pytest.mark.slow]

IDS = "import os, json; print(json.dumps([os.getuid(), os.getgid(), sorted(os.getgroups())]))"


def lab_pid(platform: Platform, user: str, admin: str) -> int:
    state = platform.lab_state(user, admin)["servers"][""]["state"]
    return int(state["lab"]["pid"])


@pytest.fixture(scope="module")
def admin(platform: Platform) -> str:
    return platform.token(platform.add_user("root-admin", admin=True), "--admin")


def test_two_users_at_once_each_run_as_themselves(platform: Platform, admin: str) -> None:
    platform.sciplat("group", "add", platform.user("team"))
    alice = platform.add_user("alice", groups=(platform.user("team"),))
    bob = platform.add_user("bob")
    tokens = {u: platform.token(u) for u in (alice, bob)}
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda u: platform.start_lab(u, tokens[u]), tokens))

    kernels = {u: LabKernel(platform.url, u, tokens[u]) for u in tokens}
    try:
        for user, kernel in kernels.items():
            entry = pwd.getpwnam(user)
            uid, gid, groups = json.loads(kernel.run(IDS))
            assert (uid, gid) == (entry.pw_uid, entry.pw_gid)
            expected = {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}
            assert set(groups) == expected
            assert kernel.run("import getpass; print(getpass.getuser())").strip() == user
        team_gid = int(subprocess.check_output(["getent", "group", platform.user("team")],
                                               text=True).split(":")[2])  # fmt: skip
        assert team_gid in json.loads(kernels[alice].run(IDS))[2]

        bob_home = Path(pwd.getpwnam(bob).pw_dir)
        (bob_home / "secret.txt").write_text("bob's")
        out = kernels[alice].run(
            f"try:\n    open({str(bob_home / 'secret.txt')!r}).read()\n    print('READ')\n"
            "except PermissionError:\n    print('DENIED')"
        )
        assert out.strip() == "DENIED"

        bob_pid = lab_pid(platform, bob, admin)
        out = kernels[alice].run(
            f"import os\ntry:\n    os.kill({bob_pid}, 0)\n    print('SIGNALLED')\n"
            "except PermissionError:\n    print('DENIED')"
        )
        assert out.strip() == "DENIED"
        assert os.path.exists(f"/proc/{bob_pid}")
    finally:
        for k in kernels.values():
            k.close()

    # Alice's token opens her lab's files but not Bob's; no token opens nothing.
    assert platform.lab_get(f"/user/{alice}/api/contents", tokens[alice]).status_code == 200
    assert platform.lab_get(f"/user/{bob}/api/contents", tokens[alice]).status_code == 403
    anonymous = httpx.get(f"{platform.url}/user/{bob}/api/contents", timeout=30)
    assert anonymous.status_code in (302, 403)


def test_lab_is_confined_private_tmp_and_no_new_privileges(platform: Platform) -> None:
    user = platform.add_user("carl")
    token = platform.token(user)
    platform.start_lab(user, token)
    marker = Path("/tmp") / f"host-only-{user}"
    marker.write_text("host")
    kernel = LabKernel(platform.url, user, token)
    try:
        out = kernel.run(
            "import os\n"
            f"print(os.path.exists({str(marker)!r}))\n"
            "status = open('/proc/self/status').read().splitlines()\n"
            "print([ln.split()[1] for ln in status if ln.startswith('NoNewPrivs')][0])\n"
            "print(oct(os.umask(0o077)))\n"
            "print(open('/proc/self/cgroup').read())"
        )
    finally:
        kernel.close()
        marker.unlink()
    lines = out.splitlines()
    assert lines[0] == "False", "the lab sees the host's /tmp"
    assert lines[1] == "1", "setuid programs could regain privileges"
    assert lines[2] == "0o77"
    assert f"memory:/sciplat-test-{platform.run_id}/{user}" in out


def test_memory_hog_is_killed_alone_and_reported(platform: Platform, admin: str) -> None:
    hog, neighbour = platform.add_user("hog"), platform.add_user("calm")
    tokens = {u: platform.token(u) for u in (hog, neighbour)}
    for u, t in tokens.items():
        platform.start_lab(u, t)
    kernel = LabKernel(platform.url, hog, tokens[hog])
    try:
        # the size is 512 MiB: ask a child process for 1 GiB, touching every page
        code = kernel.run(
            "import subprocess, sys\n"
            "r = subprocess.run([sys.executable, '-c', "
            "'b = bytearray(1024**3)\\nfor i in range(0, len(b), 4096): b[i] = 1'])\n"
            "print(r.returncode)"
        )
        assert code.strip() == "-9"
        assert kernel.run("print('still here')").strip() == "still here"
    finally:
        kernel.close()
    assert platform.lab_get(f"/user/{neighbour}/api/status", tokens[neighbour]).status_code == 200

    status = platform.sciplat("status").stdout
    row = next(line for line in status.splitlines() if line.startswith(hog))
    assert int(row.split()[-1]) >= 1, status

    def reported() -> bool:
        state = platform.lab_state(hog, admin)["servers"][""]["state"]
        return int(state["lab"]["extra"].get("oom_kills", 0)) >= 1

    wait_for(reported, 45, 0.5, "the hub to report the OOM kill")


def test_fork_bomb_stops_at_the_pids_limit(platform: Platform) -> None:
    user = platform.add_user("forker")
    token = platform.token(user)
    platform.start_lab(user, token)
    # A small interpreter forks until the kernel says no, then ends its children: the lab
    # (server and kernel) must survive it, and the host never sees more than the limit.
    bomb = (
        "import os, time\npids, err = [], 0\ntry:\n    for _ in range(5000):\n"
        "        p = os.fork()\n        if p == 0:\n            time.sleep(60)\n"
        "            os._exit(0)\n        pids.append(p)\nexcept OSError as e:\n"
        "    err = e.errno\nfor p in pids: os.kill(p, 9)\nfor p in pids: os.waitpid(p, 0)\n"
        "print(len(pids), err)"
    )
    kernel = LabKernel(platform.url, user, token)
    try:
        out = kernel.run(
            "import subprocess, sys\n"
            f"r = subprocess.run([sys.executable, '-S', '-I', '-c', {bomb!r}], "
            "capture_output=True, text=True, timeout=120)\n"
            "print(r.stdout.strip() or r.stderr)"
        )
        assert kernel.run("print('alive')").strip() == "alive"
    finally:
        kernel.close()
    forked, errno_ = out.split()
    assert errno_ == "11", "fork should fail with EAGAIN at the pids limit"
    assert 0 < int(forked) < 256  # the tiny size allows 256 tasks for the whole lab


def test_hub_restart_keeps_labs_and_routes(platform: Platform, admin: str) -> None:
    user = platform.add_user("steady")
    token = platform.token(user)
    platform.start_lab(user, token)
    pid = lab_pid(platform, user, admin)
    old_hub = platform.pid("hub")
    os.kill(old_hub, signal.SIGKILL)

    def new_hub_up() -> bool:
        try:
            new = platform.pid("hub")
        except (FileNotFoundError, ValueError):
            return False
        return new != old_hub and platform.ready()

    wait_for(new_hub_up, 60, 0.2, "the supervisor to restart the hub")
    assert os.path.exists(f"/proc/{pid}"), "the lab died with the hub"
    assert platform.lab_get(f"/user/{user}/api/contents", token).status_code == 200
    wait_for(lambda: platform.lab_state(user, admin)["servers"][""]["ready"], 30, 0.2,
             "the restarted hub to see the lab")  # fmt: skip
    assert lab_pid(platform, user, admin) == pid, "the hub started a duplicate lab"
    again = platform.api("POST", f"/users/{user}/server", token)
    assert again.status_code == 400 and "already running" in again.text


def test_down_stops_every_lab() -> None:
    with running_platform() as p:
        user = p.add_user("leaver")
        token = p.token(user)
        p.start_lab(user, token)
        cgroup = Path(f"/sys/fs/cgroup/pids/sciplat-test-{p.run_id}/{user}")
        pids = (cgroup / "cgroup.procs").read_text().split()
        assert pids
        run = p.data_dir / "run" / "prefork"
        wait_for(lambda: any(run.glob("*.pid")), 60, 0.2, "the pre-forked parent")
        parents = [int(f.read_text().split()[0]) for f in run.glob("*.pid")]
        # a supervisor that crashed cannot stop the parents itself: `down` must
        os.kill(p.pid("supervisor"), signal.SIGKILL)
        out = p.sciplat("down").stdout
        assert f"stopped the lab of {user}" in out
        assert "pre-forked lab server" in out
        # gone, or a zombie waiting for init to reap it
        wait_for(lambda: not any(start_time(int(x)) for x in pids), 10, 0.05, "labs to end")
        wait_for(lambda: not any(start_time(x) for x in parents), 10, 0.05, "parents to end")
        assert not cgroup.exists()


def _probe_wheel(path: Path) -> None:
    """A minimal pure-Python wheel (no build step, no network) for `pip install --user`."""
    dist = "sciplat_probe-1.0.dist-info"
    files = {
        "sciplat_probe.py": "VALUE = 42\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: sciplat-probe\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    records = [f"{name},," for name in files] + [f"{dist}/RECORD,,"]
    files[f"{dist}/RECORD"] = "\n".join(records) + "\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)


def test_names_and_user_installs_inside_the_lab(platform: Platform) -> None:
    user = platform.add_user("named")
    token = platform.token(user)
    platform.start_lab(user, token)
    home = Path(pwd.getpwnam(user).pw_dir)
    wheel = home / "sciplat_probe-1.0-py3-none-any.whl"
    _probe_wheel(wheel)
    entry = pwd.getpwnam(user)
    os.chown(wheel, entry.pw_uid, entry.pw_gid)
    kernel = LabKernel(platform.url, user, token)
    try:
        out = kernel.run(
            "import subprocess, sys\n"
            "run = lambda *a: subprocess.run(a, capture_output=True, text=True)\n"
            "print(run('whoami').stdout.strip())\n"
            "print(run('id', '-gn').stdout.strip())\n"
            f"print(run('ls', '-l', {str(wheel)!r}).stdout.split()[2])\n"
            "r = run(sys.executable, '-m', 'pip', 'install', '--user', '--no-deps', "
            f"'--no-index', {str(wheel)!r})\n"
            "print(r.returncode, r.stderr[-300:].replace(chr(10), ' '))\n"
            "probe = 'import sciplat_probe as p; print(p.VALUE, p.__file__)'\n"
            "print(run(sys.executable, '-c', probe).stdout.strip())"
        )
    finally:
        kernel.close()
    lines = out.splitlines()
    assert lines[0] == user
    assert lines[1] == user  # the private group has the user's name
    assert lines[2] == user  # ls -l shows the owner's name
    assert lines[3].startswith("0"), lines[3]
    value, location = lines[4].split()
    assert value == "42"
    assert location.startswith(f"{home}/.local/lib/python")
