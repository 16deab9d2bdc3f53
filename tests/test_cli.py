"""The `sciplat` command without a running platform: config errors, users, groups, tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

SCIPLAT = [sys.executable, "-m", "sciplat"]


def run(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCIPLAT_DATA_DIR": str(data)}
    env.pop("SCIPLAT_CONFIG", None)
    return subprocess.run([*SCIPLAT, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120, check=False)  # fmt: skip


def write_config(data: Path, text: str) -> None:
    data.mkdir(parents=True, exist_ok=True)
    (data / "sciplat.yaml").write_text(text)


def test_malformed_config_names_line_field_and_fix(tmp_path: Path) -> None:
    write_config(
        tmp_path, "auth:\n  provider: local\nsizes:\n  - {name: s, cpu: 1, memory: 4 bananas}\n"
    )
    for args in (["config", "check"], ["up"], ["user", "list"]):
        r = run(tmp_path, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "sciplat.yaml:4: sizes.0.memory = '4 bananas'" in r.stderr
        assert "write e.g. 4GiB" in r.stderr


def test_unknown_key_and_bad_provider(tmp_path: Path) -> None:
    write_config(tmp_path, "auth:\n  provider: ldap\nvolumez: {}\n")
    r = run(tmp_path, "config", "check")
    assert r.returncode == 2
    assert "sciplat.yaml:2: auth.provider = 'ldap': not allowed: 'local', 'github'" in r.stderr
    assert "sciplat.yaml:3: volumez: unknown key" in r.stderr


def test_missing_config_says_so(tmp_path: Path) -> None:
    r = run(tmp_path / "empty", "user", "list")
    assert r.returncode == 2
    assert "cannot read the configuration" in r.stderr


def test_users_groups_and_tokens_without_a_running_platform(tmp_path: Path) -> None:
    config = {
        "identity": {"host_accounts": "off", "uid_range": [500000, 500009],
                     "gid_range": [600000, 600009]},
        "volumes": {"root": str(tmp_path / "storage")},
    }  # fmt: skip
    write_config(tmp_path, yaml.safe_dump(config))
    assert run(tmp_path, "group", "add", "astro").returncode == 0
    r = run(tmp_path, "user", "add", "zoe", "--group", "astro", "--password-stdin",
            stdin="long-enough\n")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "uid 500000" in r.stdout
    again = run(tmp_path, "user", "add", "zoe", "--password-stdin", stdin="long-enough\n")
    assert again.returncode == 2 and "exists already" in again.stderr
    short = run(tmp_path, "user", "add", "yan", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    bad = run(tmp_path, "user", "add", "Root!", "--password-stdin", stdin="long-enough\n")
    assert bad.returncode == 2 and "not allowed" in bad.stderr
    listing = run(tmp_path, "user", "list").stdout
    assert "zoe" in listing and "astro" in listing
    token = run(tmp_path, "token", "zoe")
    assert token.returncode == 0 and len(token.stdout.strip()) >= 32
    refused = run(tmp_path, "token", "zoe", "--admin")
    assert refused.returncode == 2 and "not an admin" in refused.stderr
