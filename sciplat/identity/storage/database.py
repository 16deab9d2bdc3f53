"""Identity tables: users, groups, memberships, id counters, login failures."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from sciplat.db import Base


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class UserRow(Base):
    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    uid: Mapped[int] = mapped_column(Integer, unique=True)
    provider: Mapped[str] = mapped_column(String(16), default="local")
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    admin: Mapped[bool] = mapped_column(default=False)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    memberships: Mapped[list[MembershipRow]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class GroupRow(Base):
    __tablename__ = "groups"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    gid: Mapped[int] = mapped_column(Integer, unique=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MembershipRow(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_name", "group_name"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"))
    group_name: Mapped[str] = mapped_column(ForeignKey("groups.name", ondelete="CASCADE"))
    #: config, provider or cli: a login replaces only the provider's memberships
    source: Mapped[str] = mapped_column(String(16), default="cli")
    user: Mapped[UserRow] = relationship(back_populates="memberships")
    group: Mapped[GroupRow] = relationship()


class IdCounterRow(Base):
    """The highest id ever handed out per kind, so ids are never reused."""

    __tablename__ = "id_counters"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


def next_id(session: Session, kind: str, low: int, high: int) -> int:
    """Hand out the next never-used id of ``kind`` ('uid' or 'gid') in [low, high].

    Raises:
        OverflowError: the range is used up.
    """
    row = session.get(IdCounterRow, kind, with_for_update=True)
    column = UserRow.uid if kind == "uid" else GroupRow.gid
    candidate = max(low, (row.last + 1) if row else low)
    taken = set(session.scalars(select(column).where(column >= candidate)))
    while candidate in taken:
        candidate += 1
    if candidate > high:
        raise OverflowError(f"the {kind} range [{low}, {high}] is used up")
    if row is None:
        session.add(IdCounterRow(kind=kind, last=candidate))
    else:
        row.last = candidate
    return candidate
