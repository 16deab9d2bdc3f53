"""JupyterHub's own database, read and written while the hub is up or down: API tokens (so
``sciplat token`` works either way and every service checks them through the hub) and the
spawner states ``sciplat down`` and ``sciplat status`` need."""

from __future__ import annotations

from typing import Any

from jupyterhub import orm, roles

from sciplat.errors import SciplatError
from sciplat.identity.models import User
from sciplat.labs.models import LabState

ADMIN_SCOPES = ["admin-ui", "admin:users", "admin:servers", "admin:groups", "read:metrics",
                "list:users", "read:users", "proxy", "admin:server_state"]  # fmt: skip
DEFAULT_SCOPES = ["inherit"]


def _prepare(session: Any) -> None:
    """What a hub that has never started would have created: default roles, and the hub's own
    OAuth client that every token belongs to (the hub updates it when it starts)."""
    for role in roles.get_default_roles():
        if orm.Role.find(session, role["name"]) is None:
            roles.create_role(session, role)
    if session.query(orm.OAuthClient).filter_by(identifier="jupyterhub").first() is None:
        session.add(orm.OAuthClient(identifier="jupyterhub", secret="", redirect_uri="",
                                    description="JupyterHub"))  # fmt: skip
        session.commit()


def issue_token(hub_db_url: str, user: User, scopes: list[str], note: str) -> str:
    """Create an API token for ``user`` in the hub's database (creating the hub-side user
    record if the user has never logged in) and return it.

    Raises:
        SciplatError: a scope is unknown or more than the user holds.
    """
    session = orm.new_session_factory(hub_db_url)()
    try:
        _prepare(session)
        orm_user = orm.User.find(session, user.name)
        if orm_user is None:
            orm_user = orm.User(name=user.name)
            session.add(orm_user)
        orm_user.admin = user.admin
        session.commit()
        # a hub that is already up gives new users their default roles only when they log in
        roles.assign_default_roles(session, orm_user)
        session.commit()
        try:
            token: str = orm_user.new_api_token(scopes=scopes, note=note)
        except (ValueError, KeyError) as exc:  # KeyError: JupyterHub's ScopeNotFound
            raise SciplatError(f"cannot issue that token: {exc}") from exc
        session.commit()
        return token
    finally:
        session.close()


def labs_in(session: Any) -> list[tuple[str, str, LabState, bool]]:
    """(user, server name, lab state, running) of every spawner that has a lab state, from an
    open session of the hub's database (the hub's own, or one opened here)."""
    found = []
    for sp in session.query(orm.Spawner):
        raw = (sp.state or {}).get("lab")
        state = LabState.from_dict(raw) if isinstance(raw, dict) else None
        if state is not None:
            found.append((sp.user.name, sp.name or "", state, sp.server is not None))
    return found


def lab_states(hub_db_url: str) -> list[tuple[str, str, LabState, bool]]:
    """:func:`labs_in` for a hub database that may be in use by a running hub."""
    session = orm.new_session_factory(hub_db_url)()
    try:
        return labs_in(session)
    finally:
        session.close()
