"""sciplat/identity/storage/accounts.py: real host accounts via shadow-utils (root only)."""

from __future__ import annotations

import grp
import pwd
import secrets
import string
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sciplat.errors import ConflictError
from sciplat.identity.storage.accounts import GECOS, HostAccounts
from tests.conftest import needs_root

pytestmark = needs_root


def _free(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return False
    return True


@dataclass
class Names:
    user: str
    group: str
    uid: int
    group_gid: int


@pytest.fixture
def names() -> Iterator[Names]:
    """Fresh names and a free id block in [900000, 999999]; removes what the test made."""
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(4))
    while True:
        base = 900000 + secrets.randbelow(99990)
        if all(_free(base + i) for i in range(4)):
            break
    n = Names(f"sptestu{suffix}", f"sptestu{suffix}g", base, base + 1)
    accounts = HostAccounts(enabled=True)
    try:
        yield n
    finally:
        accounts.remove_user(n.user)
        accounts.remove_group(n.group)
        accounts.remove_group(n.user)


def test_create_group_and_user(names):
    accounts = HostAccounts(enabled=True)
    home = Path("/srv/sciplat-unit/home") / names.user
    accounts.ensure_group(names.group, names.group_gid)
    accounts.ensure_user(names.user, names.uid, names.uid, home, [names.group])

    entry = pwd.getpwnam(names.user)
    assert (entry.pw_uid, entry.pw_gid) == (names.uid, names.uid)
    assert entry.pw_gecos == GECOS
    assert entry.pw_dir == str(home)
    assert entry.pw_shell == "/bin/bash"
    assert not home.exists()  # --no-create-home
    assert grp.getgrnam(names.user).gr_gid == names.uid
    assert grp.getgrnam(names.group).gr_gid == names.group_gid
    assert grp.getgrnam(names.group).gr_mem == [names.user]

    out = subprocess.run(["id", names.user], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (
        f"uid={names.uid}({names.user}) gid={names.uid}({names.user}) "
        f"groups={names.uid}({names.user}),{names.group_gid}({names.group})"
    )


def test_ensure_is_idempotent_and_updates_groups_and_home(names):
    accounts = HostAccounts(enabled=True)
    accounts.ensure_group(names.group, names.group_gid)
    accounts.ensure_user(names.user, names.uid, names.uid, Path("/h1"), [names.group])
    accounts.ensure_user(names.user, names.uid, names.uid, Path("/h1"), [names.group])
    assert grp.getgrnam(names.group).gr_mem == [names.user]

    accounts.ensure_user(names.user, names.uid, names.uid, Path("/h2"), [])
    assert grp.getgrnam(names.group).gr_mem == []
    assert pwd.getpwnam(names.user).pw_dir == "/h2"


def test_remove_user_removes_private_group(names):
    accounts = HostAccounts(enabled=True)
    accounts.ensure_user(names.user, names.uid, names.uid, Path("/h"), [])
    accounts.remove_user(names.user)
    with pytest.raises(KeyError):
        pwd.getpwnam(names.user)
    with pytest.raises(KeyError):
        grp.getgrnam(names.user)
    accounts.remove_user(names.user)  # gone already: no error
    accounts.remove_group(names.group)


def test_clash_with_system_account(names):
    accounts = HostAccounts(enabled=True)
    before = pwd.getpwnam("daemon")
    with pytest.raises(ConflictError, match=r"host account 'daemon' exists .* not the platform's"):
        accounts.ensure_user("daemon", names.uid, before.pw_gid, Path("/h"), [])
    assert pwd.getpwnam("daemon") == before
    with pytest.raises(KeyError):
        pwd.getpwuid(names.uid)


def test_clash_with_system_group(names):
    accounts = HostAccounts(enabled=True)
    with pytest.raises(ConflictError, match="host group 'daemon' exists with GID"):
        accounts.ensure_group("daemon", names.group_gid)
    with pytest.raises(ConflictError, match="taken by host group 'root'"):
        accounts.ensure_group(names.group, 0)
    with pytest.raises(KeyError):
        grp.getgrnam(names.group)


def test_clash_with_system_uid(names):
    accounts = HostAccounts(enabled=True)
    with pytest.raises(ConflictError, match=r"UID 0 for user .* taken by host account 'root'"):
        accounts.ensure_user(names.user, 0, names.uid, Path("/h"), [])
    with pytest.raises(KeyError):
        pwd.getpwnam(names.user)


def test_remove_user_leaves_foreign_accounts_alone(names):
    # a host account made by someone else (no GECOS mark), with its own private group
    subprocess.run(["groupadd", "--gid", str(names.uid), names.user], check=True)
    subprocess.run(
        ["useradd", "--uid", str(names.uid), "--gid", str(names.uid), "--no-create-home",
         names.user],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        HostAccounts(enabled=True).remove_user(names.user)
        assert pwd.getpwnam(names.user).pw_uid == names.uid
        assert grp.getgrnam(names.user).gr_gid == names.uid
    finally:
        subprocess.run(["userdel", names.user], check=False, capture_output=True)


def test_disabled_is_a_no_op(names):
    accounts = HostAccounts(enabled=False)
    accounts.ensure_group(names.group, names.group_gid)
    accounts.ensure_user(names.user, names.uid, names.uid, Path("/h"), [names.group])
    with pytest.raises(KeyError):
        pwd.getpwnam(names.user)
    with pytest.raises(KeyError):
        grp.getgrnam(names.group)
