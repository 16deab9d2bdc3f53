"""Quota policy in one place: a user's limits, whether a request fits, and the report that
``sciplat quota show`` prints. Every check of every service goes through :meth:`QuotaService.check`,
so the rule is written once."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sciplat.identity.models import Group, User
from sciplat.quotas.errors import QuotaExceededError
from sciplat.quotas.models import (
    QUOTA_KEYS,
    EffectiveQuota,
    LabUse,
    Number,
    QuotaLine,
    QuotaReport,
    format_amount,
    format_bytes,
)
from sciplat.quotas.services.ratelimit import RateLimiter
from sciplat.quotas.services.resolver import QuotaResolver
from sciplat.quotas.services.usage import UsageService
from sciplat.shared import Shared

WARN_AT = 0.9

_ADVICE = {
    "labs": "Stop one of your running labs first (Hub Control Panel), or ask an administrator "
            "to raise your quota.",
    "cores": "Stop a running lab or choose a smaller size, or ask an administrator to raise "
             "your quota.",
    "memory": "Stop a running lab or choose a smaller size, or ask an administrator to raise "
              "your quota.",
    "storage": "Delete files you no longer need from your home, or ask an administrator to "
               "raise your quota.",
}  # fmt: skip
_DEFAULT_ADVICE = "Wait for running work to finish, or ask an administrator to raise your quota."


class StorageInfo(Protocol):
    """What the report needs from the storage limits backend."""

    @property
    def kind(self) -> str: ...

    @property
    def enforcing(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    def warning(self, user: User) -> str | None: ...

    def capacity(self, user: User) -> int | None: ...

    def group_warning(self, group: Group) -> str | None: ...


@dataclass(frozen=True)
class QuotaCheck:
    """The result of checking the quota document against the known users and groups."""

    problems: tuple[str, ...]
    effective: tuple[EffectiveQuota, ...]


def storage_limit_of(resolver: QuotaResolver) -> Callable[[User], int | None]:
    """The function the storage limits backend asks for a user's storage quota in bytes."""

    def limit_of(user: User) -> int | None:
        value = resolver.limit("storage", user.name, user.group_names).value
        return None if value is None else int(value)

    return limit_of


def group_storage_limit_of(resolver: QuotaResolver) -> Callable[[str], int | None]:
    """The function the storage limits backend asks for a group directory's size in bytes."""

    def limit_of(group: str) -> int | None:
        value = resolver.group_storage(group).value
        return None if value is None else int(value)

    return limit_of


class QuotaService(Shared):
    """Resolves limits, checks requests against them, and reports use."""

    def __init__(
        self,
        resolver: QuotaResolver,
        usage: UsageService,
        storage: StorageInfo | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.resolver = resolver
        self.usage = usage
        self.storage = storage
        self.limiter = limiter or RateLimiter()

    def effective(self, user: User) -> EffectiveQuota:
        return self.resolver.effective(user.name, user.group_names)

    def check(self, user: User, key: str, in_use: Number, adding: Number = 1) -> None:
        """Refuse a request that would bring ``user``'s use of ``key`` from ``in_use`` to
        ``in_use + adding`` above their limit.

        Raises:
            QuotaExceededError: names the quota, the limit, the use and what to do.
            KeyError: ``key`` is not a quota key.
        """
        limit = self.resolver.limit(key, user.name, user.group_names)
        if limit.value is None or (limit.value > 0 and in_use + adding <= limit.value):
            return
        advice = _ADVICE.get(key, _DEFAULT_ADVICE)
        if limit.value > 0 and adding != 1:
            advice = f"This needs {format_amount(key, adding)} more. {advice}"
        raise QuotaExceededError(key, limit.value, in_use, advice)

    def check_rate(self, user: User, service: str, cost: int = 1) -> None:
        """Count one API request of ``user`` to ``service`` against their ``api_rate``.

        Raises:
            ThrottledError: over the rate; ``retry_after`` is the Retry-After header (429).
            QuotaExceededError: the user's ``api_rate`` is 0 (403).
        """
        self.check_rate_of(user.name, user.group_names, service, cost)

    def check_rate_of(self, name: str, groups: Iterable[str], service: str, cost: int = 1) -> None:
        """:meth:`check_rate` for a caller known by name and groups (a token's owner)."""
        value = self.resolver.limit("api_rate", name, list(groups)).value
        self.limiter.enforce(name, service, None if value is None else int(value), cost)

    def query_limits(self, name: str, groups: Iterable[str]) -> tuple[int | None, float | None]:
        """(query_rows, query_seconds) for a caller known by name and groups; None: unlimited."""
        names = list(groups)
        rows = self.resolver.limit("query_rows", name, names).value
        seconds = self.resolver.limit("query_seconds", name, names).value
        return (None if rows is None else int(rows), None if seconds is None else float(seconds))

    def check_lab_start(self, user: User, running: Sequence[LabUse], new: LabUse) -> None:
        """Refuse a lab of size ``new`` beside the ``running`` ones if labs, cores or memory
        would go over the user's limits, or if the user may store nothing.

        Raises:
            QuotaExceededError: the first quota the lab would break.
        """
        self.check(user, "labs", len(running), 1)
        self.check(user, "cores", sum(lab.cores for lab in running), new.cores)
        self.check(user, "memory", sum(lab.memory for lab in running), new.memory)
        if self.resolver.limit("storage", user.name, user.group_names).value == 0:
            raise QuotaExceededError("storage", 0, 0, _ADVICE["storage"])

    def report(
        self, user: User, labs: Sequence[LabUse], counters: Mapping[str, Number] | None = None
    ) -> QuotaReport:
        """Limits with their sources and current use of every key, for ``quota show``."""
        effective = self.effective(user)
        usage = self.usage.usage(user, labs, counters)
        lines = []
        warnings = []
        for key in QUOTA_KEYS:
            detail = ""
            if key == "group_storage":
                detail, over = self._groups_detail(user, usage.group_storage)
                warnings += over
            line = QuotaLine(key, effective[key], usage.get(key), detail)
            fraction = line.fraction
            if key != "group_storage" and fraction is not None and fraction >= WARN_AT:
                used, limit = format_amount(key, line.used), format_amount(key, line.limit.value)
                warnings.append(f"{key}: {used} of {limit} in use ({fraction:.0%})")
            lines.append(line)
        warnings += self._storage_warnings(user, effective["storage"].value)
        return QuotaReport(
            user=user.name,
            groups=effective.groups,
            lines=tuple(lines),
            storage_backend=self.storage.kind if self.storage is not None else "none",
            storage_enforced=self.storage.enforcing if self.storage is not None else False,
            storage_reason=self.storage.reason if self.storage is not None else "",
            warnings=tuple(dict.fromkeys(warnings)),
        )

    def _storage_warnings(self, user: User, limit: Number | None) -> list[str]:
        if self.storage is None:
            return []
        found = [w for w in [self.storage.warning(user)] if w]
        if self.storage.enforcing and limit and self.storage.capacity(user) is None:
            found.append(f"the storage quota of {user.name} is not enforced yet: it is applied "
                         "when their next lab starts")  # fmt: skip
        return found

    def _groups_detail(self, user: User, sizes: Mapping[str, int]) -> tuple[str, list[str]]:
        """Each group directory's use against its limit, and warnings for full ones (by what
        the enforcing backend can still hold, else by the limit)."""
        parts, over = [], []
        groups = {g.name: g for g in user.groups}
        for group, size in sorted(sizes.items()):
            limit = self.resolver.group_storage(group)
            parts.append(
                f"{group}: {format_bytes(size)} of {format_amount('group_storage', limit.value)}"
            )
            if self.storage is not None and self.storage.enforcing and group in groups:
                warning = self.storage.group_warning(groups[group])
                if warning:
                    over.append(warning)
            elif limit.value is not None and size >= WARN_AT * limit.value:
                over.append(f"group directory of {group} is {size / max(limit.value, 1):.0%} full")
        return ", ".join(parts), over

    def check_document(self, users: Iterable[User], groups: Iterable[str]) -> QuotaCheck:
        """Check that the ``quotas`` entries name known users and groups, and resolve every
        user's effective quota (for ``quota check``)."""
        users = list(users)
        known_groups = set(groups) | {g for u in users for g in u.group_names}
        known_users = {u.name for u in users}
        group_entries, user_entries = self.resolver.named_entries()
        problems = [
            f"quotas.groups.{g}: no such group" for g in sorted(group_entries - known_groups)
        ]
        problems += [f"quotas.users.{u}: no such user" for u in sorted(user_entries - known_users)]
        return QuotaCheck(tuple(problems), tuple(self.effective(u) for u in users))
