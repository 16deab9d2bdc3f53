"""sciplat/hub/hubdb.py: API tokens and spawner states in JupyterHub's own SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyterhub import orm, roles

from sciplat.errors import SciplatError
from sciplat.hub.hubdb import ADMIN_SCOPES, issue_token, lab_states
from sciplat.identity.models import User
from sciplat.labs.models import LabState

ALICE = User("alice", 200000, 200000)
ROOTY = User("rooty", 200001, 200001, admin=True)


def hub_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/jupyterhub.sqlite"


@pytest.fixture
def started_hub_db(tmp_path: Path) -> str:
    """A hub database as JupyterHub leaves it after its first start: default roles and the
    'jupyterhub' OAuth client exist."""
    url = hub_url(tmp_path)
    session = orm.new_session_factory(url)()
    try:
        session.add(orm.OAuthClient(identifier="jupyterhub", secret="", redirect_uri=""))
        for spec in roles.get_default_roles():
            roles.create_role(session, spec)
        session.commit()
    finally:
        session.close()
    return url


def find(url: str, token: str) -> tuple[str, list[str], str, bool, list[str]] | None:
    session = orm.new_session_factory(url)()
    try:
        t = orm.APIToken.find(session, token)
        if t is None:
            return None
        return (
            t.user.name,
            list(t.scopes),
            t.note,
            t.user.admin,
            sorted(r.name for r in t.user.roles),
        )
    finally:
        session.close()


def test_issue_token_on_a_fresh_database(tmp_path):
    url = hub_url(tmp_path)
    # the hub has never started: no roles, no OAuth client yet
    token = issue_token(url, ALICE, ["inherit"], "cli")
    assert find(url, token) == ("alice", ["inherit"], "cli", False, ["user"])


def test_admin_token_on_a_fresh_database(tmp_path):
    url = hub_url(tmp_path)
    token = issue_token(url, ROOTY, ADMIN_SCOPES, "admin")
    name, scopes, _, admin, user_roles = find(url, token)
    assert (name, admin, user_roles) == ("rooty", True, ["admin", "user"])
    assert set(ADMIN_SCOPES) <= set(scopes)


def test_issue_token_creates_the_user(started_hub_db):
    token = issue_token(started_hub_db, ALICE, ["inherit"], "from the CLI")
    assert find(started_hub_db, token) == ("alice", ["inherit"], "from the CLI", False, ["user"])


def test_issue_token_for_an_admin(started_hub_db):
    token = issue_token(started_hub_db, ROOTY, ADMIN_SCOPES, "admin")
    name, scopes, _, admin, user_roles = find(started_hub_db, token)
    assert (name, admin, user_roles) == ("rooty", True, ["admin", "user"])
    assert set(ADMIN_SCOPES) <= set(scopes)


def test_second_token_reuses_the_user(started_hub_db):
    first = issue_token(started_hub_db, ALICE, ["inherit"], "one")
    second = issue_token(started_hub_db, ALICE, ["inherit"], "two")
    assert first != second
    assert find(started_hub_db, first)[:3] == ("alice", ["inherit"], "one")
    assert find(started_hub_db, second)[:3] == ("alice", ["inherit"], "two")
    session = orm.new_session_factory(started_hub_db)()
    try:
        assert [u.name for u in session.query(orm.User)] == ["alice"]
    finally:
        session.close()


def test_scopes_the_user_lacks_are_refused(started_hub_db):
    with pytest.raises(SciplatError, match=r"^cannot issue that token: .*not held by User alice"):
        issue_token(started_hub_db, ALICE, ["admin:users"], "too much")


def test_unknown_scope_is_refused(tmp_path):
    with pytest.raises(SciplatError, match=r"^cannot issue that token"):
        issue_token(hub_url(tmp_path), ALICE, ["no-such-scope"], "typo")


def test_unknown_token_is_not_found(started_hub_db):
    issue_token(started_hub_db, ALICE, ["inherit"], "n")
    assert find(started_hub_db, "not-a-token") is None


def test_lab_states(tmp_path):
    url = hub_url(tmp_path)
    session = orm.new_session_factory(url)()
    try:
        alice = orm.User(name="alice")
        bob = orm.User(name="bob")
        session.add_all([alice, bob])
        session.commit()
        common = {"backend": "local", "ip": "127.0.0.1", "log_path": "/l"}
        lab = {**common, "slug": "alice", "pid": 123, "start_time": 456, "port": 1}
        gpu = {**common, "slug": "alice--gpu", "pid": 124, "start_time": 457, "port": 2}
        incomplete = {"backend": "local", "slug": "bob", "pid": 5}
        session.add_all(
            [
                orm.Spawner(user=alice, name="", state={"lab": lab}),
                orm.Spawner(user=alice, name="gpu", state={"lab": gpu, "other": 1}),
                orm.Spawner(user=bob, name="", state=None),
                orm.Spawner(user=bob, name="old", state={"pid": 99}),
                orm.Spawner(user=bob, name="odd", state={"lab": "not a dict"}),
                orm.Spawner(user=bob, name="partial", state={"lab": incomplete}),
            ]
        )
        session.commit()
    finally:
        session.close()
    found = sorted(lab_states(url), key=lambda entry: (entry[0], entry[1]))
    # (user, server, state, running): no server row means the hub does not count it running
    assert [(u, s, st.to_dict(), r) for u, s, st, r in found] == [
        ("alice", "", LabState(**lab).to_dict(), False),
        ("alice", "gpu", LabState(**gpu).to_dict(), False),
    ]


def test_lab_states_of_an_empty_database(tmp_path):
    assert lab_states(hub_url(tmp_path)) == []
