"""Users, groups and their POSIX ids: the policy side of identity."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sciplat.config import AuthConfig, Config
from sciplat.db import Database
from sciplat.errors import AuthError, ConflictError, NotFoundError, ThrottledError
from sciplat.identity.models import Group, User
from sciplat.identity.passwords import hash_password, verify_password
from sciplat.identity.storage.accounts import HostAccounts
from sciplat.identity.storage.database import (
    GroupRow,
    MembershipRow,
    UserRow,
    next_id,
    utcnow,
)
from sciplat.naming import check_name
from sciplat.shared import Shared

log = logging.getLogger(__name__)

BAD_LOGIN = "Invalid username or password."


def _to_user(row: UserRow, auth: AuthConfig) -> User:
    groups = tuple(
        sorted((Group(m.group.name, m.group.gid, m.group.description) for m in row.memberships),
               key=lambda g: g.name)
    )  # fmt: skip
    # --admin from the CLI is stored; the config's admin_users and admin_groups are read live,
    # so taking a name out of the config takes the rights away
    admin = (
        row.admin
        or row.name in auth.admin_users
        or any(g.name in auth.admin_groups for g in groups)
    )
    return User(row.name, row.uid, row.uid, admin, row.provider, groups)


class IdentityService(Shared):
    """Creates users and groups, hands out ids, checks passwords and throttles logins."""

    def __init__(self, config: Config, db: Database, accounts: HostAccounts) -> None:
        self.config = config
        self.db = db
        self.accounts = accounts

    def sync_host(self, user: User) -> User:
        """Make the host's accounts match ``user`` (a no-op when not root).

        Raises:
            ConflictError: a host account or group clashes with the platform's.
        """
        for g in user.groups:
            self.accounts.ensure_group(g.name, g.gid)
        self.accounts.ensure_user(
            user.name, user.uid, user.gid, self.config.volumes.home_path(user.name),
            user.group_names,
        )  # fmt: skip
        return user

    # -- groups -----------------------------------------------------------------------------
    def _group(self, s: Session, name: str, description: str = "") -> GroupRow:
        row = s.get(GroupRow, name)
        if row is None:
            check_name(name, "group")
            if s.get(UserRow, name) is not None:
                raise ConflictError(
                    f"group name {name!r} is a user's private group; choose another name"
                )
            gid = next_id(s, "gid", *self.config.identity.gid_range)
            row = GroupRow(name=name, gid=gid, description=description)
            s.add(row)
            s.flush()
            log.info("allocated GID %d to group %s", gid, name)
        return row

    def add_group(self, name: str, description: str = "") -> Group:
        """Create a group with a new GID.

        Raises:
            InvalidNameError, ConflictError: bad or taken name.
        """
        with self.db.session() as s:
            if s.get(GroupRow, name) is not None:
                raise ConflictError(f"group {name!r} exists already")
            row = self._group(s, name, description)
            s.commit()
            group = Group(row.name, row.gid, row.description)
        self.accounts.ensure_group(group.name, group.gid)
        return group

    def list_groups(self) -> list[Group]:
        with self.db.session() as s:
            rows = s.scalars(select(GroupRow).order_by(GroupRow.name))
            return [Group(r.name, r.gid, r.description) for r in rows]

    # -- users ------------------------------------------------------------------------------
    def _set_memberships(
        self, s: Session, row: UserRow, groups: Iterable[str], source: str
    ) -> None:
        """Replace ``row``'s memberships of ``source`` with ``groups`` (others are kept)."""
        wanted = set(groups)
        for m in list(row.memberships):
            if m.source == source and m.group_name not in wanted:
                row.memberships.remove(m)
        have = {m.group_name for m in row.memberships}
        for name in sorted(wanted - have):
            group = self._group(s, name)
            row.memberships.append(MembershipRow(group=group, source=source))

    def add_user(
        self,
        name: str,
        groups: Iterable[str] = (),
        admin: bool = False,
        password: str | None = None,
        provider: str = "local",
        uid: int | None = None,
    ) -> User:
        """Create a user with a new UID (or ``uid`` from the provider) and private group.

        Raises:
            InvalidNameError: malformed or reserved name.
            ConflictError: the name, or the provider's UID, is taken.
        """
        check_name(name)
        with self.db.session() as s:
            if s.get(UserRow, name) is not None:
                raise ConflictError(
                    f"user {name!r} exists already (use `sciplat user passwd` to reset "
                    "the password)"
                )
            if s.get(GroupRow, name) is not None:
                raise ConflictError(f"{name!r} is a group name; choose another user name")
            if uid is None:
                uid = next_id(s, "uid", *self.config.identity.uid_range)
            elif s.scalar(select(UserRow).where(UserRow.uid == uid)) is not None:
                raise ConflictError(f"UID {uid} from the provider is already someone's")
            row = UserRow(
                name=name,
                uid=uid,
                provider=provider,
                admin=admin,
                password_hash=hash_password(password) if password else None,
            )
            s.add(row)
            self._set_memberships(s, row, groups, "cli" if provider == "local" else provider)
            try:
                s.commit()
            except IntegrityError as exc:
                raise ConflictError(f"user {name!r} or UID {uid} exists already") from exc
            log.info("allocated UID %d to user %s", uid, name)
            user = _to_user(row, self.config.auth)
        return self.sync_host(user)

    def get_user(self, name: str) -> User:
        """The user called ``name``.

        Raises:
            NotFoundError: no such user.
        """
        with self.db.session() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise NotFoundError(f"no user {name!r}; add one with `sciplat user add {name}`")
            return _to_user(row, self.config.auth)

    def list_users(self) -> list[User]:
        with self.db.session() as s:
            rows = s.scalars(select(UserRow).order_by(UserRow.name))
            return [_to_user(r, self.config.auth) for r in rows]

    def set_password(self, name: str, password: str) -> None:
        """Set a local password and lift any lockout.

        Raises:
            NotFoundError: no such user.
        """
        with self.db.session() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise NotFoundError(f"no user {name!r}")
            row.password_hash = hash_password(password)
            row.failed_logins, row.locked_until = 0, None
            s.commit()

    def set_groups(self, name: str, groups: Iterable[str], source: str = "cli") -> User:
        """Replace the memberships of ``source`` (creating missing groups)."""
        with self.db.session() as s:
            row = s.get(UserRow, name)
            if row is None:
                raise NotFoundError(f"no user {name!r}")
            self._set_memberships(s, row, groups, source)
            s.commit()
            user = _to_user(row, self.config.auth)
        return self.sync_host(user)

    def sync_config_groups(self) -> None:
        """Create the config's groups and memberships; drop config memberships it removed."""
        members: dict[str, list[str]] = {}
        for g in self.config.groups:
            with self.db.session() as s:
                row = self._group(s, g.name, g.description)
                row.description = g.description
                s.commit()
            for user in g.members:
                members.setdefault(user, []).append(g.name)
        with self.db.session() as s:
            for user_row in s.scalars(select(UserRow)):
                self._set_memberships(s, user_row, members.get(user_row.name, []), "config")
            s.commit()

    # -- logins -----------------------------------------------------------------------------
    def authenticate(self, name: str, password: str) -> User:
        """Check a local password, with lockout after repeated failures.

        Raises:
            AuthError: unknown user or wrong password (the same message for both).
            ThrottledError: the account is locked for ``retry_after`` seconds.
        """
        policy = self.config.auth.local
        with self.db.session() as s:
            row = s.get(UserRow, name)
            now = utcnow()
            if row is not None and row.locked_until and row.locked_until > now:
                wait = math.ceil((row.locked_until - now).total_seconds())
                raise ThrottledError(
                    f"Too many failed logins for {name!r}: try again in {wait} seconds.", wait
                )
            if not verify_password(row.password_hash if row else None, password) or row is None:
                if row is not None:
                    row.failed_logins += 1
                    over = row.failed_logins - policy.max_failures
                    if over >= 0:
                        seconds = policy.lockout_seconds * 2 ** min(over, 10)
                        row.locked_until = now + dt.timedelta(seconds=seconds)
                        log.warning("locked %s for %ds after failed logins", name, seconds)
                    s.commit()
                raise AuthError(BAD_LOGIN)
            row.failed_logins, row.locked_until = 0, None
            s.commit()
            return _to_user(row, self.config.auth)

    def login_from_provider(
        self, name: str, provider: str, groups: Iterable[str], provider_uid: int | None
    ) -> User:
        """Create or update a user who logged in through an external provider.

        The provider's groups replace the memberships it gave before; groups from the
        config or the CLI stay.

        Raises:
            AuthError: the user is not in ``auth.allowed_groups``.
            ConflictError: the name belongs to a local account.
        """
        mapping = self.config.auth.group_mapping
        mapped = sorted({mapping.get(g, g) for g in groups})
        usable = []
        for g in mapped:
            try:
                usable.append(check_name(g, "group"))
            except Exception:
                log.info("ignoring provider group %r for %s: not a valid group name", g, name)
        with self.db.session() as s:
            row = s.get(UserRow, name)
            # what the provider said last time does not count: only this login's groups
            # and memberships from the config or the CLI
            kept = {m.group_name for m in row.memberships if m.source != provider} if row else set()
        allowed = self.config.auth.allowed_groups
        if allowed and not (set(usable) | kept) & set(allowed):
            raise AuthError(
                f"{name} is not a member of any group allowed on this platform "
                f"({', '.join(allowed)}); ask its administrators for access."
            )
        uid = None
        if self.config.identity.uid_source == "provider" and provider_uid is not None:
            uid = provider_uid + self.config.identity.provider_uid_offset
        if row is None:
            return self.add_user(name, usable, provider=provider, uid=uid)
        if row.provider != provider:
            raise ConflictError(
                f"{name!r} is an account of the {row.provider!r} provider, not {provider!r}"
            )
        return self.set_groups(name, usable, provider)
