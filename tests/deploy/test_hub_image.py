"""The control-plane image (images/hub/), opt-in (SCIPLAT_BUILD_IMAGE=1): built without a
daemon, it runs the TAP role as the chart does (non-root, read-only root, no capabilities)
and answers a query."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import ROOT
from tests.deploy.test_lab_image import free_port, image_test_prerequisites, run

TAG = "localhost/sciplat:test"


@pytest.fixture
def hub_image() -> Iterator[str]:
    image_test_prerequisites()
    done = run(str(ROOT / "images" / "hub" / "build.sh"), TAG, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield TAG
    run("podman", "rmi", "--force", TAG)


@pytest.mark.image
def test_the_tap_role_serves_queries_from_a_locked_down_container(
    hub_image: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "sciplat.yaml").write_text("services:\n  tap: {anonymous: true}\n")
    for path in (tmp_path, config, config / "sciplat.yaml"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the container's user reads it
    port, name = free_port(), f"sciplat-tap-test-{os.getpid()}"
    started = run(
        "podman", "--runtime", "runc", "run", "--detach", "--name", name,
        # what the chart asks of the pod: read-only root, writable data and /tmp, no caps
        "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/var/lib/sciplat:mode=1777",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--ulimit", "nofile=4096:8192", "--ulimit", "nproc=4096:8192",  # see test_lab_image
        "--volume", f"{config}:/etc/sciplat:ro",
        "--env", "SCIPLAT_HUB_API_URL=http://hub.invalid/hub/api",
        "--publish", f"127.0.0.1:{port}:8090",
        hub_image, "python", "-m", "sciplat.deploy.incluster", "tap",
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        base = f"http://127.0.0.1:{port}/api/tap"
        deadline, answer = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{base}/availability", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 200, run("podman", "logs", name).stderr
        query = {"QUERY": "SELECT TOP 2 hip FROM hipparcos.main", "LANG": "ADQL", "FORMAT": "csv"}
        rows = httpx.post(f"{base}/sync", data=query, timeout=30).text.split()
        assert rows[0] == '"hip"' and len(rows) == 3
        assert run("podman", "exec", name, "id", "-u").stdout.strip() == "10001"
    finally:
        run("podman", "rm", "--force", "--time", "0", name)
