"""`sciplat env build` with a new name: a real venv from a requirements file, registered so the
menu offers it, and the registry merged into the configuration."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from sciplat.config import EnvironmentConfig, parse_config
from sciplat.errors import ConfigError
from sciplat.factory import Factory
from sciplat.labs.environments import registry
from tests.labs.test_local_labs import _probe_wheel
from tests.test_cli import run, write_config


def test_registry_merges_without_overriding_the_config(tmp_path: Path) -> None:
    config = parse_config(
        yaml.safe_dump({"environments": [{"name": "a", "path": "/x/a", "recommended": True}]})
    )
    path = tmp_path / "environments.yaml"
    registry.register(path, EnvironmentConfig(name="a", path=Path("/y/a"), kind="daily"))
    registry.register(path, EnvironmentConfig(name="b", path=Path("/y/b"), kind="weekly"))
    registry.register(path, EnvironmentConfig(name="b", path=Path("/z/b"), kind="weekly"))
    merged = registry.merged(config, registry.load(path))
    assert [(e.name, str(e.path)) for e in merged.environments] == [("a", "/x/a"), ("b", "/z/b")]
    registry.register(path, EnvironmentConfig(name="c", path=Path("/y/c"), recommended=True))
    with pytest.raises(ConfigError, match="at most one environment can be recommended"):
        registry.merged(config, registry.load(path))
    path.write_text("- {name: 1bad, path: /p}\n")
    with pytest.raises(ConfigError, match=r"environments\.yaml"):
        registry.load(path)


def test_env_build_creates_and_registers_a_new_environment(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    write_config(tmp_path, yaml.safe_dump({
        "identity": {"host_accounts": "off"},
        "volumes": {"root": str(storage)},
    }))  # fmt: skip
    wheel = tmp_path / "sciplat_probe-1.0-py3-none-any.whl"
    _probe_wheel(wheel)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"# a comment\n{wheel}\n")
    r = run(tmp_path, "env", "build", "w2026-48", "--from", str(reqs), "--kind", "weekly",
            "--display-name", "Weekly 2026_48")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "registered w2026-48 (weekly)" in r.stdout
    env_path = storage / "envs" / "w2026-48"
    code = "import sciplat_probe as p; print(p.VALUE)"
    probe = subprocess.run(
        [env_path / "bin" / "python", "-c", code], capture_output=True, text=True, check=False
    )
    assert probe.stdout.strip() == "42"
    # every environment carries the jobs client, importable with no sciplat installed
    client = subprocess.run(
        [env_path / "bin" / "python", "-I", "-c",
         "import sciplat_jobs; print(sciplat_jobs.FINISHED)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert client.stdout.strip() == "('done', 'failed', 'cancelled')", client.stderr
    listing = run(tmp_path, "env", "list").stdout
    assert "w2026-48" in listing and "weekly" in listing and "ready" in listing
    factory = Factory.from_data_dir(tmp_path)
    menu = factory.labs.menu()
    assert "w2026-48" in menu.offered()
    assert menu.radio[0].name == "w2026-48"  # the newest weekly gets a radio button
