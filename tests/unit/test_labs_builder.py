"""sciplat/labs/builder.py: a LabSpec from user, size and environment, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sciplat.config import EnvironmentConfig, SizeConfig
from sciplat.identity.models import Group, User
from sciplat.labs.builder import build_spec, server_command
from sciplat.labs.models import LabLimits

ENVIRONMENT = EnvironmentConfig(name="w2026-47", path=Path("/srv/envs/w2026-47"))
SIZE = SizeConfig(name="small", cpu=1.5, memory="2GiB", pids=256)
USER = User("alice", 200001, 200001, groups=(Group("astro", 300000), Group("optics", 300002)))


def build(hub_env: dict[str, str], isolate: bool = True):
    return build_spec(
        user=USER,
        server="",
        home=Path("/srv/sciplat/home/alice"),
        environment=ENVIRONMENT,
        size=SIZE,
        hub_env=hub_env,
        ip="127.0.0.1",
        port=50123,
        log_path=Path("/data/logs/labs/alice.log"),
        isolate=isolate,
    )


def test_the_platforms_dask_settings_are_passed_on(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DASK_GATEWAY__ADDRESS", "http://127.0.0.1:8000/api/dask")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://elsewhere:8786")  # not the platform's
    env = build({}).env
    assert env["DASK_GATEWAY__ADDRESS"] == "http://127.0.0.1:8000/api/dask"
    assert "DASK_SCHEDULER_ADDRESS" not in env


def test_env_has_only_the_listed_variables_and_the_hubs(monkeypatch: pytest.MonkeyPatch):
    for var in [v for v in os.environ if v.startswith("DASK_GATEWAY__")]:
        monkeypatch.delenv(var)  # a hub with Dask on has them: see the next test
    spec = build({"SECRET": "1", "JUPYTERHUB_API_TOKEN": "x", "PATH": "/evil", "HOME": "/root"})
    assert "SECRET" not in spec.env
    assert spec.env == {
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PATH": "/srv/envs/w2026-47/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/srv/sciplat/home/alice",
        "USER": "alice",
        "LOGNAME": "alice",
        "SHELL": "/bin/bash",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
        "SCIPLAT_ENVIRONMENT": "w2026-47",
        "SCIPLAT_SIZE": "small",
        "JUPYTERHUB_API_TOKEN": "x",
    }


@pytest.mark.parametrize(
    "name", ["JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_OAUTH_SCOPES"]
)
def test_all_jupyterhub_variables_pass(name):
    assert build({name: "v"}).env[name] == "v"


def test_legacy_jpy_token_passes():
    # JupyterHub still sets JPY_API_TOKEN (the old name of JUPYTERHUB_API_TOKEN)
    assert build({"JPY_API_TOKEN": "x"}).env["JPY_API_TOKEN"] == "x"


@pytest.mark.parametrize(
    "name",
    ["SECRET", "AWS_SECRET_ACCESS_KEY", "LD_PRELOAD", "PYTHONPATH", "jupyterhub_x", "XJUPYTERHUB_"],
)
def test_other_variables_do_not_pass(name):
    assert name not in build({name: "v"}).env


def test_path_starts_with_the_environment():
    spec = build({})
    assert spec.env["PATH"].split(":")[0] == "/srv/envs/w2026-47/bin"


def test_spec_fields():
    spec = build({}, isolate=False)
    assert (spec.user, spec.server, spec.slug) == ("alice", "", "alice")
    assert (spec.uid, spec.gid, spec.groups) == (200001, 200001, (300000, 300002))
    assert spec.home == Path("/srv/sciplat/home/alice")
    assert spec.environment == "w2026-47"
    assert spec.command == ("/srv/envs/w2026-47/bin/jupyterhub-singleuser",)
    assert spec.limits == LabLimits(cpu=1.5, memory=2 * 1024**3, pids=256)
    assert (spec.ip, spec.port) == ("127.0.0.1", 50123)
    assert spec.log_path == Path("/data/logs/labs/alice.log")
    assert spec.isolate is False


def test_server_command():
    assert server_command(ENVIRONMENT) == ("/srv/envs/w2026-47/bin/jupyterhub-singleuser",)
