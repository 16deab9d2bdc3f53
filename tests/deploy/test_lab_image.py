"""The lab image (images/lab/): what it installs, and (opt-in, SCIPLAT_BUILD_IMAGE=1) a real
daemonless build and a run that answers on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from packaging.requirements import Requirement

from sciplat.demo import demo_config
from sciplat.labs.environments.service import lab_requirements
from tests.deploy.conftest import ROOT

IMAGE_DIR = ROOT / "images" / "lab"
TAG = "localhost/sciplat-lab:test"


def image_requirements() -> dict[str, Requirement]:
    lines = (IMAGE_DIR / "requirements.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {req.name.lower(): req for req in reqs}


def test_the_image_has_the_demo_environment_and_the_lab_packages() -> None:
    demo = yaml.safe_load(demo_config(Path("/srv/data")))
    (default,) = [env for env in demo["environments"] if env.get("recommended")]
    have = image_requirements()
    assert {name.lower() for name in default["requirements"]} <= set(have)
    for wanted in map(Requirement, lab_requirements()):
        pinned = next(iter(wanted.specifier), None)
        assert wanted.name in have, wanted.name
        if pinned is not None and pinned.operator == "==":  # the hub's own version
            assert have[wanted.name].specifier.contains(pinned.version), (
                f"images/lab/requirements.txt: {have[wanted.name]} excludes the hub's "
                f"{wanted.name} {pinned.version}; labs must run the hub's version"
            )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)


def image_test_prerequisites() -> None:
    """Skip unless image builds are asked for and can run here."""
    if os.environ.get("SCIPLAT_BUILD_IMAGE") != "1":
        pytest.skip("builds a ~1 GB image for minutes: opt in with SCIPLAT_BUILD_IMAGE=1")
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    missing = [tool for tool in ("debootstrap", "podman", "runc") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: apt-get install debootstrap podman runc")


@pytest.fixture
def built_image() -> Iterator[str]:
    image_test_prerequisites()
    done = run(str(IMAGE_DIR / "build.sh"), TAG, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield TAG
    run("podman", "rmi", "--force", TAG)


@pytest.mark.image
def test_the_built_image_serves_jupyterlab_as_any_non_root_user(built_image: str) -> None:
    inspect = run("podman", "image", "inspect", "--format", "{{.Config.User}}", built_image)
    assert inspect.stdout.strip() == "1000:1000"  # a plain `podman run` is not root either
    port, token, name = free_port(), "sciplat-image-test", f"sciplat-lab-test-{os.getpid()}"
    # As the Kubernetes backend runs it: the user's own UID (not in the image's passwd), a
    # read-only root, writable /tmp only; a non-root process holds no capability (SYS_RESOURCE
    # lets runc set the rlimits below inside the container). runc also applies podman's
    # default rlimits (nofile/nproc near a million), which needs CAP_SYS_RESOURCE in the
    # host's namespace; where the host lacks it (this CI's sandbox), explicit limits below the
    # host's keep the start working.
    started = run(
        "podman", "--runtime", "runc", "run", "--detach", "--name", name,
        "--cap-add", "SYS_RESOURCE",
        "--ulimit", "nofile=4096:8192", "--ulimit", "nproc=4096:8192",
        "--user", "200001:200001", "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--publish", f"127.0.0.1:{port}:8888",
        "--env", f"JUPYTER_TOKEN={token}", "--env", "HOME=/tmp",
        built_image,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"token {token}"}
        deadline, answer = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{base}/api/status", headers=auth, timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        logs = run("podman", "logs", name).stderr[-2000:]
        assert answer is not None and answer.status_code == 200, logs
        assert httpx.get(f"{base}/api/status", timeout=5).status_code == 403  # no token
        lab = httpx.get(f"{base}/lab", headers=auth, timeout=10)
        assert "<title>JupyterLab" in lab.text
        kernel = httpx.post(f"{base}/api/kernels", headers=auth, json={}, timeout=30)
        assert kernel.status_code == 201, kernel.text
        httpx.delete(f"{base}/api/kernels/{kernel.json()['id']}", headers=auth, timeout=30)
        assert run("podman", "exec", name, "id", "-u").stdout.strip() == "200001"
        code = "import numpy, scipy, astropy, matplotlib, pandas, pyvo, ipykernel"
        imports = run("podman", "exec", name, "python", "-c", code)
        assert imports.returncode == 0, imports.stderr
    finally:
        run("podman", "rm", "--force", "--time", "0", name)
