"""sciplat/labs/local/backend.py: what the launcher is told (pure, against expected output)."""

from __future__ import annotations

import json
from pathlib import Path

from sciplat.labs.local.backend import launch_description
from sciplat.labs.local.storage.cgroups import CgroupDriver
from sciplat.labs.models import LabLimits, LabSpec

DATA = Path(__file__).resolve().parents[1] / "data"

ENV = {
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PATH": "/srv/envs/w2026-47/bin:/usr/local/bin:/usr/bin:/bin",
    "HOME": "/srv/sciplat/home/alice",
    "USER": "alice",
    "LOGNAME": "alice",
    "SHELL": "/bin/bash",
    "SCIPLAT_ENVIRONMENT": "w2026-47",
    "SCIPLAT_SIZE": "small",
    "JUPYTERHUB_API_TOKEN": "x",
    "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/gpu/",
}


def spec(isolate: bool = True, server: str = "gpu") -> LabSpec:
    return LabSpec(
        user="alice",
        server=server,
        uid=200001,
        gid=200001,
        groups=(300000, 300002),
        home=Path("/srv/sciplat/home/alice"),
        environment="w2026-47",
        size="small",
        command=("/srv/envs/w2026-47/bin/jupyterhub-singleuser",),
        env=dict(ENV),
        limits=LabLimits(cpu=1, memory=4 * 1024**3, pids=1024),
        ip="127.0.0.1",
        port=50123,
        log_path=Path("/var/log/sciplat/alice--gpu.log"),
        isolate=isolate,
    )


def test_launch_description_matches_expected():
    s = spec()
    procs = CgroupDriver(1, Path("/sys/fs/cgroup"), "sciplat").procs_files(s.slug)
    got = launch_description(s, procs)
    expected = json.loads((DATA / "launch_description.json").read_text())
    # what the launcher reads is JSON: compare after a round trip
    assert json.loads(json.dumps(got)) == expected


def test_launch_description_unisolated():
    got = launch_description(spec(isolate=False), [])
    assert got["isolate"] is False
    assert got["private_tmp"] is False
    assert got["cgroup_procs"] == []


def test_slug():
    assert spec(server="gpu").slug == "alice--gpu"
    assert spec(server="").slug == "alice"
