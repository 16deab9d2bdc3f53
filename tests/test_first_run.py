"""`sciplat up` on an empty data directory: demo config, admin account, printed login, a lab."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import needs_root
from tests.hub.test_local_login import login
from tests.support.platform import (
    REPO,
    TEST_STORAGE,
    free_ports,
    lab_environment,
    random_suffix,
    wait_for,
)

pytestmark = [needs_root, pytest.mark.slow]


def test_first_start_writes_demo_config_and_prints_the_login() -> None:
    run_id = random_suffix()
    root = TEST_STORAGE / f"first-{run_id}"
    storage = root / "storage"
    (storage / "envs").mkdir(parents=True)
    os.chmod(TEST_STORAGE, 0o755)
    for d in (root, storage, storage / "envs"):
        os.chmod(d, 0o755)
    # the demo environment is the shared test one, so the test does not build another
    (storage / "envs" / "default").symlink_to(lab_environment())
    port, hub_port, api_port, tap_port, jobs_port, *dask_ports = free_ports(8)
    env = {
        **os.environ,
        "SCIPLAT_STORAGE_ROOT": str(storage),
        "SCIPLAT_HUB_PORT": str(hub_port),
        "SCIPLAT_PROXY_API_PORT": str(api_port),
        "SCIPLAT_TAP_PORT": str(tap_port),
        "SCIPLAT_JOBS_PORT": str(jobs_port),
        "SCIPLAT_DASK_PORTS": ",".join(map(str, dask_ports)),
        "SCIPLAT_CGROUP_PARENT": f"sciplat-test-{run_id}",
        "PYTHONUNBUFFERED": "1",
    }
    data = root / "data"
    log = root / "up.log"
    had_admin = subprocess.run(["id", "admin"], capture_output=True, check=False).returncode == 0
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sciplat", "--data-dir", str(data), "up", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=REPO,
        )  # fmt: skip
    try:
        found = wait_for(
            lambda: re.search(r"user: admin\s+password: (\S+)", log.read_text()),
            90, 0.1, "the login to be printed",
        )  # fmt: skip
        text = log.read_text()
        assert f"open http://127.0.0.1:{port}/hub/login" in text
        config = yaml.safe_load((data / "sciplat.yaml").read_text())
        assert config["auth"]["admin_users"] == ["admin"]
        assert Path(config["environments"][0]["path"]) == storage / "envs" / "default"
        assert oct((data / "initial-admin-password").stat().st_mode & 0o777) == "0o600"

        class Target:
            url = f"http://127.0.0.1:{port}"

        r = login(Target(), "admin", found.group(1))  # type: ignore[arg-type]
        assert r.status_code == 302
        assert httpx.get(f"http://127.0.0.1:{port}/hub/health", timeout=5).status_code == 200
        # the demo runs every service, Dask included, behind the same proxy
        assert config["quotas"]["default"]["dask_workers"] == 4
        for path in ("/api/tap/availability", "/api/dask/api/health"):
            wait_for(
                lambda path=path: httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
                .status_code == 200,
                60, 0.3, path,
            )  # fmt: skip
    finally:
        subprocess.run([sys.executable, "-m", "sciplat", "--data-dir", str(data), "down"],
                       env=env, capture_output=True, timeout=120, check=False)  # fmt: skip
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if not had_admin:  # a platform on this host may own "admin": leave it alone
            subprocess.run(["userdel", "admin"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
