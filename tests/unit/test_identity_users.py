"""sciplat/identity/services/users.py on a real SQLite state database (no host accounts)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import sciplat.identity.storage.database  # noqa: F401 - registers the identity tables
from sciplat.config import Config, parse_config
from sciplat.db import Database
from sciplat.errors import AuthError, ConflictError, InvalidNameError, NotFoundError, ThrottledError
from sciplat.identity.services.users import BAD_LOGIN, IdentityService
from sciplat.identity.storage.accounts import HostAccounts

BASE = """\
identity:
  uid_range: [5000, 5002]
  gid_range: [6000, 6002]
auth:
  local:
    max_failures: 3
    lockout_seconds: {lockout}
"""

MakeService = Callable[..., IdentityService]


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[MakeService]:
    """Services over one database file; each call may bring its own config."""
    dbs: list[Database] = []

    def make(extra: str = "", lockout: int = 60) -> IdentityService:
        cfg: Config = parse_config(BASE.format(lockout=lockout) + extra)
        db = Database(f"sqlite:///{tmp_path}/s.sqlite")
        dbs.append(db)
        return IdentityService(cfg, db, HostAccounts(enabled=False))

    yield make
    for db in dbs:
        db.close()


@pytest.fixture
def svc(make_service: MakeService) -> IdentityService:
    return make_service()


def sql(service: IdentityService, statement: str) -> None:
    with service.db.engine.begin() as conn:
        conn.execute(text(statement))


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s: {what}")
        time.sleep(0.05)


# -- ids -------------------------------------------------------------------------------------


def test_uids_are_sequential_from_the_range(svc):
    assert [svc.add_user(n).uid for n in ("alice", "bob", "carol")] == [5000, 5001, 5002]


def test_private_gid_equals_uid(svc):
    alice = svc.add_user("alice")
    assert alice.gid == alice.uid == 5000
    assert svc.get_user("alice").gid == 5000


def test_uid_range_exhaustion(svc):
    for n in ("alice", "bob", "carol"):
        svc.add_user(n)
    with pytest.raises(OverflowError, match=r"the uid range \[5000, 5002\] is used up"):
        svc.add_user("dave")
    with pytest.raises(NotFoundError):
        svc.get_user("dave")


def test_uids_never_reused_after_delete(svc):
    svc.add_user("alice")
    svc.add_user("bob")
    sql(svc, "DELETE FROM users WHERE name = 'bob'")
    sql(svc, "DELETE FROM users WHERE name = 'alice'")
    assert svc.add_user("carol").uid == 5002
    with pytest.raises(OverflowError):
        svc.add_user("dave")


def test_uids_never_reused_across_service_instances(make_service):
    make_service().add_user("alice")
    sql(make_service(), "DELETE FROM users")
    assert make_service().add_user("bob").uid == 5001


def test_gids_are_sequential_and_separate_from_uids(svc):
    svc.add_user("alice")
    astro = svc.add_group("astro", "astronomers")
    optics = svc.add_group("optics")
    assert (astro.gid, optics.gid) == (6000, 6001)
    assert astro.description == "astronomers"
    assert [(g.name, g.gid) for g in svc.list_groups()] == [("astro", 6000), ("optics", 6001)]
    assert svc.add_group("radio").gid == 6002
    with pytest.raises(OverflowError, match=r"the gid range \[6000, 6002\] is used up"):
        svc.add_group("solar")


def test_gids_never_reused_after_delete(svc):
    svc.add_group("astro")
    sql(svc, "DELETE FROM groups WHERE name = 'astro'")
    assert svc.add_group("optics").gid == 6001


def test_groups_given_at_user_creation_get_gids(svc):
    alice = svc.add_user("alice", groups=["optics", "astro"])
    assert [(g.name, g.gid) for g in alice.groups] == [("astro", 6000), ("optics", 6001)]
    assert alice.supplementary_gids == [6000, 6001]


# -- names -----------------------------------------------------------------------------------


def test_add_existing_user_conflicts(svc):
    svc.add_user("alice")
    with pytest.raises(ConflictError, match="user 'alice' exists already"):
        svc.add_user("alice")
    assert [u.name for u in svc.list_users()] == ["alice"]


def test_user_name_equal_to_group_name_conflicts(svc):
    svc.add_group("astro")
    with pytest.raises(ConflictError, match="'astro' is a group name"):
        svc.add_user("astro")


def test_group_name_equal_to_user_name_conflicts(svc):
    svc.add_user("alice")
    with pytest.raises(ConflictError, match="is a user's private group"):
        svc.add_group("alice")
    with pytest.raises(ConflictError, match="is a user's private group"):
        svc.add_user("bob", groups=["alice"])


def test_add_existing_group_conflicts(svc):
    svc.add_group("astro")
    with pytest.raises(ConflictError, match="group 'astro' exists already"):
        svc.add_group("astro")


@pytest.mark.parametrize("name", ["Alice", "root", "1x"])
def test_invalid_user_names(svc, name):
    with pytest.raises(InvalidNameError):
        svc.add_user(name)


def test_invalid_group_name(svc):
    with pytest.raises(InvalidNameError, match=r"^group name"):
        svc.add_group("Astro")


def test_conflict_with_provider_uid(svc):
    svc.add_user("alice")
    with pytest.raises(ConflictError, match="UID 5000 from the provider"):
        svc.add_user("bob", provider="github", uid=5000)


# -- logins ----------------------------------------------------------------------------------


def test_right_password(svc):
    svc.add_user("alice", password="correct horse")
    user = svc.authenticate("alice", "correct horse")
    assert (user.name, user.uid) == ("alice", 5000)


def test_wrong_password_and_unknown_user_same_message(svc):
    svc.add_user("alice", password="correct horse")
    with pytest.raises(AuthError) as wrong:
        svc.authenticate("alice", "battery staple")
    with pytest.raises(AuthError) as unknown:
        svc.authenticate("nobody-here", "correct horse")
    assert wrong.value.message == unknown.value.message == BAD_LOGIN
    assert str(wrong.value) == str(unknown.value)


def test_user_without_password_cannot_log_in(svc):
    svc.add_user("alice")
    with pytest.raises(AuthError, match=BAD_LOGIN):
        svc.authenticate("alice", "")
    with pytest.raises(AuthError, match=BAD_LOGIN):
        svc.authenticate("alice", "sciplat-no-such-user")


def fail_logins(svc: IdentityService, name: str, n: int) -> None:
    for _ in range(n):
        with pytest.raises(AuthError):
            svc.authenticate(name, "wrong")


def test_lockout_after_max_failures(svc):
    svc.add_user("alice", password="right")
    fail_logins(svc, "alice", 2)
    assert svc.authenticate("alice", "right").name == "alice"  # a success resets the count
    fail_logins(svc, "alice", 3)
    with pytest.raises(ThrottledError) as info:
        svc.authenticate("alice", "right")
    assert 0 < info.value.retry_after <= 60
    assert "try again in" in info.value.message
    with pytest.raises(ThrottledError):
        svc.authenticate("alice", "wrong")


def test_unknown_users_are_not_locked(svc):
    # no row to count failures on: always the same AuthError, never a tell-tale ThrottledError
    for _ in range(5):
        with pytest.raises(AuthError, match=BAD_LOGIN):
            svc.authenticate("ghost", "x")


def test_lockout_expires_and_doubles(make_service):
    svc = make_service(lockout=1)
    svc.add_user("alice", password="right")
    fail_logins(svc, "alice", 3)
    with pytest.raises(ThrottledError) as info:
        svc.authenticate("alice", "right")
    assert info.value.retry_after == 1

    def unlocked() -> bool:
        try:
            svc.authenticate("alice", "wrong")
        except ThrottledError:
            return False
        except AuthError:
            return True
        return False

    # once the lock is over, one more failure locks again, twice as long
    poll(unlocked, timeout=10, what="the 1 s lockout to expire")
    with pytest.raises(ThrottledError) as info:
        svc.authenticate("alice", "right")
    assert info.value.retry_after == 2

    def logged_in() -> bool:
        try:
            return svc.authenticate("alice", "right").name == "alice"
        except ThrottledError:
            return False

    poll(logged_in, timeout=10, what="the 2 s lockout to expire")
    fail_logins(svc, "alice", 2)  # the count was reset by the success: not locked yet
    assert svc.authenticate("alice", "right").name == "alice"


def test_set_password_lifts_lockout(svc):
    svc.add_user("alice", password="old")
    fail_logins(svc, "alice", 3)
    with pytest.raises(ThrottledError):
        svc.authenticate("alice", "old")
    svc.set_password("alice", "new")
    assert svc.authenticate("alice", "new").name == "alice"
    with pytest.raises(AuthError):
        svc.authenticate("alice", "old")


def test_set_password_unknown_user(svc):
    with pytest.raises(NotFoundError):
        svc.set_password("ghost", "x")


# -- groups from the config ------------------------------------------------------------------

CONFIG_GROUPS = """\
groups:
  - name: astro
    description: astronomers
    members: [alice, bob]
  - name: optics
    members: [alice]
"""


def test_sync_config_groups(make_service):
    svc = make_service(CONFIG_GROUPS)
    svc.add_user("alice", groups=["radio"])
    svc.add_user("bob")
    svc.sync_config_groups()
    groups = {g.name: g for g in svc.list_groups()}
    assert set(groups) == {"astro", "optics", "radio"}
    assert groups["astro"].description == "astronomers"
    assert svc.get_user("alice").group_names == ["astro", "optics", "radio"]
    assert svc.get_user("bob").group_names == ["astro"]


def test_sync_config_groups_without_users_creates_groups(make_service):
    svc = make_service(CONFIG_GROUPS)
    svc.sync_config_groups()
    assert [g.name for g in svc.list_groups()] == ["astro", "optics"]


def test_sync_config_groups_drops_removed_config_memberships_only(make_service):
    first = make_service(CONFIG_GROUPS)
    first.add_user("alice", groups=["radio"])
    first.add_user("bob", groups=["astro"])  # bob's astro membership comes from the CLI
    first.sync_config_groups()
    gid_before = {g.name: g.gid for g in first.list_groups()}

    second = make_service("groups:\n  - name: astro\n    description: sky\n    members: [carol]\n")
    second.add_user("carol")
    second.sync_config_groups()
    assert second.get_user("alice").group_names == ["radio"]  # config ones gone, CLI kept
    assert second.get_user("bob").group_names == ["astro"]  # CLI membership kept
    assert second.get_user("carol").group_names == ["astro"]
    groups = {g.name: g for g in second.list_groups()}
    # groups are never deleted nor renumbered; the description follows the config
    assert {n: g.gid for n, g in groups.items()} == gid_before
    assert groups["astro"].description == "sky"


def test_sync_is_idempotent(make_service):
    svc = make_service(CONFIG_GROUPS)
    svc.add_user("alice")
    svc.sync_config_groups()
    svc.sync_config_groups()
    assert svc.get_user("alice").group_names == ["astro", "optics"]
    assert [g.gid for g in svc.list_groups()] == [6000, 6001]


# -- admins ----------------------------------------------------------------------------------


def test_admin_via_admin_users(make_service):
    svc = make_service("  admin_users: [alice]\n")
    assert svc.add_user("alice").admin
    assert not svc.add_user("bob").admin
    assert svc.add_user("carol", admin=True).admin
    assert svc.get_user("alice").admin
    assert not svc.get_user("bob").admin


def test_admin_via_admin_groups(make_service):
    svc = make_service("  admin_groups: [ops]\n")
    svc.add_user("alice", password="pw", groups=["ops"])
    svc.add_user("bob", password="pw", groups=["astro"])
    assert svc.get_user("alice").admin
    assert svc.authenticate("alice", "pw").admin
    assert not svc.get_user("bob").admin
    svc.set_groups("bob", ["ops"])
    assert svc.get_user("bob").admin
    # admin_groups is evaluated at read time: a config without it revokes
    assert not make_service().get_user("alice").admin


def test_removing_from_admin_users_revokes_admin(make_service):
    make_service("  admin_users: [alice]\n").add_user("alice")
    assert not make_service().get_user("alice").admin
