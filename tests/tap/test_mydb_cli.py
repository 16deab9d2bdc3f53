"""``sciplat table ...`` and ``sciplat quota show``'s table_storage, through the real factory
(its quota resolver gives the TAP service the table_storage limit)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sciplat.cli import main
from sciplat.factory import Factory
from sciplat.tap.errors import TapQuotaError
from sciplat.tap.models.query import Caller
from sciplat.tap.services.mydb_formats import read_body
from tests.tap.test_mydb import CSV

CONFIG = """\
identity:
  host_accounts: "off"
  uid_range: [910100, 910199]
  gid_range: [920100, 920199]
volumes:
  root: {root}
services:
  tap:
    demo_catalogue: false
quotas:
  default: {{table_storage: 1MiB}}
  users:
    bob: {{table_storage: 100}}
"""


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SCIPLAT_CONFIG", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "sciplat.yaml").write_text(CONFIG.format(root=tmp_path / "storage"))
    factory = Factory.from_data_dir(data)
    factory.identity.add_user("alice")
    factory.identity.add_user("bob")
    return data


def test_quota_show_and_table_commands(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tap = Factory.from_data_dir(data_dir).tap
    saved, _ = tap.mydb.save(Caller("alice"), "user_alice.t", read_body(CSV, "text/csv"))
    with pytest.raises(TapQuotaError, match="quota table_storage exceeded: your tables use 0 "
                       "bytes of 100 bytes"):  # fmt: skip
        tap.mydb.save(Caller("bob"), "user_bob.t", read_body(CSV, "text/csv"))
    # bob's quota is 100 bytes: full once something slipped in (a lowered quota, say)
    full = tap.mydb.store.get("user_alice", "t")
    assert full is not None
    tap.mydb.store.commit(tap.mydb.store.write_file("user_bob", "old", read_body(CSV, "text/csv")),
                          replace(full, owner="bob", schema="user_bob", name="old"))  # fmt: skip
    with pytest.raises(TapQuotaError, match=r"your tables use 1\.4 KiB of 100 bytes; drop"):
        tap.mydb.save(Caller("bob"), "user_bob.t", read_body(CSV, "text/csv"))
    assert tap.mydb.store.get("user_bob", "t") is None
    bobs = data_dir / "tap" / "mydb" / "user_bob"
    assert bobs.is_dir() and [p.name for p in bobs.iterdir()] == ["old.parquet"]
    tap.mydb.admin_drop("user_bob.old")
    tap.mydb.store.close()

    assert main(["--data-dir", str(data_dir), "quota", "show", "alice", "--json"]) == 0
    line = json.loads(capsys.readouterr().out)["quotas"]["table_storage"]
    assert line == {"limit": 1024 * 1024, "source": "default", "used": saved.bytes}

    assert main(["--data-dir", str(data_dir), "table", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["user_alice.t", "alice", "3"]
    assert main(["--data-dir", str(data_dir), "table", "share", "user_alice.t", "astro"]) == 0
    assert capsys.readouterr().out.strip().endswith("shared with: astro")
    assert main(["--data-dir", str(data_dir), "table", "unshare", "user_alice.t", "astro"]) == 0
    assert capsys.readouterr().out.strip().endswith("shared with: nobody")
    assert main(["--data-dir", str(data_dir), "table", "drop", "user_alice.nope"]) == 2
    assert "there is no user table user_alice.nope" in capsys.readouterr().err
    assert main(["--data-dir", str(data_dir), "table", "drop", "user_alice.t"]) == 0
    assert capsys.readouterr().out.startswith("dropped user_alice.t of alice (3 rows")
    assert main(["--data-dir", str(data_dir), "quota", "show", "alice", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["quotas"]["table_storage"]["used"] == 0
