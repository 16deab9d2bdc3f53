"""JupyterHub's own database, read and written while the hub is up or down: API tokens (so
``sciplat token`` works either way and every service checks them through the hub) and the
spawner states ``sciplat down`` and ``sciplat status`` need."""

from __future__ import annotations

from typing import Any

from jupyterhub import orm

from sciplat.identity.models import User

ADMIN_SCOPES = ["admin-ui", "admin:users", "admin:servers", "admin:groups", "read:metrics",
                "list:users", "read:users", "proxy"]  # fmt: skip
DEFAULT_SCOPES = ["inherit"]


def issue_token(hub_db_url: str, user: User, scopes: list[str], note: str) -> str:
    """Create an API token for ``user`` in the hub's database (creating the hub-side user
    record if the user has never logged in) and return it."""
    session = orm.new_session_factory(hub_db_url)()
    try:
        orm_user = orm.User.find(session, user.name)
        if orm_user is None:
            orm_user = orm.User(name=user.name)
            session.add(orm_user)
        orm_user.admin = user.admin
        # a hub that is already up gives new users the default role only when they log in
        for role_name in ("user", "admin") if user.admin else ("user",):
            role = orm.Role.find(session, role_name)
            if role is not None and role not in orm_user.roles:
                orm_user.roles.append(role)
        session.commit()
        token: str = orm_user.new_api_token(scopes=scopes, note=note)
        session.commit()
        return token
    finally:
        session.close()


def lab_states(hub_db_url: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(user, server name, lab state) of every spawner that has a lab state."""
    session = orm.new_session_factory(hub_db_url)()
    try:
        return [
            (sp.user.name, sp.name or "", dict(sp.state["lab"]))
            for sp in session.query(orm.Spawner)
            if sp.state and isinstance(sp.state.get("lab"), dict)
        ]
    finally:
        session.close()
