"""sciplat/quotas/cli.py: ``quota show`` and ``quota check`` against a real data directory,
state database and config, through a factory wired the way factory.py is meant to be."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sciplat.errors import ConfigError, NotFoundError
from sciplat.factory import Factory
from sciplat.quotas import cli
from sciplat.quotas.models import LabUse
from sciplat.quotas.services.usage import lab_use

CONFIG = """\
identity:
  host_accounts: "off"
  uid_range: [910000, 910099]
  gid_range: [920000, 920099]
volumes:
  root: {root}
groups:
  - name: astro
    members: [alice]
quotas:
  default: {{labs: 1, cores: 2, memory: 4GiB, storage: 1GiB}}
  groups:
    astro: {{cores: 8, group_storage: 10GiB}}
    ghosts: {{labs: 3}}
  users:
    alice: {{storage: 5GiB}}
    nobody: {{labs: 9}}
"""


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SCIPLAT_CONFIG", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "sciplat.yaml").write_text(CONFIG.format(root=tmp_path / "storage"))
    factory = Factory.from_data_dir(data)
    factory.identity.sync_config_groups()
    factory.identity.add_user("alice", ["astro"])
    factory.identity.add_user("bob")
    home = factory.config.volumes.home_path("alice")
    home.mkdir(parents=True)
    (home / "notes").write_bytes(b"x" * 100_000)
    return data


def args(data_dir: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["--data-dir", str(data_dir), *argv])


def test_show_text(data_dir, capsys):
    parsed = args(data_dir, "quota", "show", "alice")
    assert parsed.handler(parsed) == 0
    out = capsys.readouterr().out
    assert "quotas of alice (groups: astro)" in out
    assert "home storage limits: " in out
    rows = {line.split()[0]: line for line in out.splitlines()[4:] if line.strip()}
    assert rows["cores"].split()[1:4] == ["8", "cores", "group:astro"]
    assert rows["storage"].split()[1:4] == ["5", "GiB", "user:alice"]
    assert rows["labs"].split()[1:4] == ["1", "default", "0"]
    assert "astro: 0 B of 10 GiB" in rows["group_storage"]
    assert rows["jobs"].split()[1:] == ["unlimited", "unlimited", "-"]


def test_show_json(data_dir, capsys):
    parsed = args(data_dir, "quota", "show", "bob", "--json")
    assert parsed.handler(parsed) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["user"] == "bob"
    assert doc["quotas"]["cores"] == {"limit": 2.0, "source": "default", "used": 0}
    assert doc["quotas"]["dask_workers"] == {"limit": None, "source": "unlimited", "used": None}
    assert doc["storage_backend"]["kind"] in ("loop-image", "report-only", "xfs-project")


def test_show_measures_the_home(data_dir, capsys):
    parsed = args(data_dir, "quota", "show", "alice", "--json")
    parsed.handler(parsed)
    assert json.loads(capsys.readouterr().out)["quotas"]["storage"]["used"] >= 100_000


def test_show_unknown_user(data_dir):
    parsed = args(data_dir, "quota", "show", "zed")
    with pytest.raises(NotFoundError, match="no user 'zed'"):
        parsed.handler(parsed)


def test_check_lists_every_user_and_unknown_entries(data_dir, capsys):
    parsed = args(data_dir, "quota", "check")
    assert parsed.handler(parsed) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "the quota document is valid (2 users)"
    assert "warning: quotas.groups.ghosts: no such group" in out
    assert "warning: quotas.users.nobody: no such user" in out
    alice = next(line for line in out if line.startswith("alice"))
    assert "cores 8 cores (group:astro)" in alice
    assert "storage 5 GiB (user:alice)" in alice


def test_check_json(data_dir, capsys):
    parsed = args(data_dir, "quota", "check", "--json")
    parsed.handler(parsed)
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True
    assert [u["user"] for u in doc["users"]] == ["alice", "bob"]


def test_check_rejects_an_invalid_document(data_dir):
    (data_dir / "sciplat.yaml").write_text("quotas:\n  default:\n    cores: lots\n")
    parsed = args(data_dir, "quota", "check")
    with pytest.raises(ConfigError, match=r"sciplat.yaml:3: quotas.default.cores = 'lots'"):
        parsed.handler(parsed)


def test_lab_use_of_a_size(data_dir):
    config = Factory.from_data_dir(data_dir).config
    assert lab_use("medium", config) == LabUse(2, 8 * 1024**3)
    assert lab_use("gone", config) == LabUse(1, 4 * 1024**3)  # counts as the default size
