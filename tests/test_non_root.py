"""`sciplat up` as an ordinary user: it works, says clearly that labs are not isolated, and a
lab runs as that same user (no per-user UIDs, no cgroups)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys

import httpx
import pytest
import yaml

from tests.conftest import needs_root
from tests.support.kernel import LabKernel
from tests.support.platform import (
    REPO,
    TEST_STORAGE,
    free_ports,
    lab_environment,
    random_suffix,
    wait_for,
)

pytestmark = [needs_root, pytest.mark.slow]
NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def test_platform_as_an_ordinary_user() -> None:
    probe = subprocess.run([*AS_NOBODY, sys.executable, "-c", "import sciplat"],
                           capture_output=True, check=False, cwd="/")  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"the checkout's venv is not readable by other users here ({REPO})")
    root = TEST_STORAGE / f"nonroot-{random_suffix()}"
    data = root / "data"
    data.mkdir(parents=True)
    os.chmod(TEST_STORAGE, 0o755)
    port, hub_port, api_port, *dask_ports = free_ports(6)
    config = {
        "auth": {"provider": "local"},
        "environments": [{"name": "test", "path": str(lab_environment()), "recommended": True}],
        "sizes": [{"name": "tiny", "cpu": 0.5, "memory": "512MiB", "default": True}],
        "volumes": {"root": str(root / "storage")},
        "culling": {"idle_timeout": 0},
        "services": {"tap": {"enabled": False}},
        "hub": {"port": port, "hub_port": hub_port, "proxy_api_port": api_port},
    }
    (data / "sciplat.yaml").write_text(yaml.safe_dump(config))
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root)], check=True)
    env = {**os.environ, "HOME": str(root), "SCIPLAT_DATA_DIR": str(data),
           "SCIPLAT_DASK_PORTS": ",".join(map(str, dask_ports)),
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    env.pop("SCIPLAT_CGROUP_PARENT", None)

    def sciplat(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*AS_NOBODY, sys.executable, "-m", "sciplat", *args], env=env,
                              input=stdin, capture_output=True, text=True, cwd=root,
                              timeout=120, check=False)  # fmt: skip

    assert sciplat("user", "add", "solo", "--password-stdin", stdin="long-enough\n").returncode == 0
    log = root / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*AS_NOBODY, sys.executable, "-m", "sciplat", "up"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=root)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: "sciplat is up" in log.read_text(), 90, 0.2, "the platform as nobody")
        text = log.read_text()
        assert re.search(r"WARNING: sciplat is not running as root: every lab runs as this "
                         r"account, without per-user UIDs, cgroup limits", text), text  # fmt: skip
        token = sciplat("token", "solo").stdout.strip()
        r = httpx.post(f"{url}/hub/api/users/solo/server",
                       headers={"Authorization": f"token {token}"}, timeout=120)  # fmt: skip
        assert r.status_code in (201, 202), r.text
        wait_for(lambda: httpx.get(f"{url}/user/solo/api", timeout=5).status_code == 200, 120,
                 0.2, "the lab")  # fmt: skip
        kernel = LabKernel(url, "solo", token)
        try:
            assert kernel.run("import os; print(os.getuid())").strip() == str(NOBODY)
        finally:
            kernel.close()
    finally:
        sciplat("down")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
