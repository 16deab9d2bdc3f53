"""``python -m sciplat.tap``: how the hub runs the service (demo catalogue loaded on start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.platform import free_ports

pyvo = pytest.importorskip("pyvo")


def test_managed_service_starts_with_the_demo_catalogue(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = json.dumps({"port": port, "row_group_size": 16384})
    env = {**os.environ, "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sciplat.tap", "--data-dir", str(tmp_path),
         "--config-json", config],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/tap"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the service did not answer in 120 s"
            try:
                if httpx.get(f"{url}/availability", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        result = pyvo.dal.TAPService(url).run_sync("SELECT COUNT(*) AS n FROM hipparcos.main")
        assert result.to_table()["n"][0] == 117955
        assert (tmp_path / "tap" / "current").is_symlink()
        # a token the (unreachable) hub cannot check is refused, not waved through
        r = httpx.get(f"{url}/sync", params={"QUERY": "SELECT TOP 1 hip FROM hipparcos.main"},
                      headers={"Authorization": "Bearer x"})  # fmt: skip
        assert r.status_code == 401
        assert b"hub does not answer" in r.content
    finally:
        proc.terminate()
        proc.wait(timeout=30)
