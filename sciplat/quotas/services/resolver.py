"""Which limit applies to a user: pure, from the ``quotas`` section alone.

For every key: a user override wins; otherwise the most generous of the default and the
grants of the user's groups (a group counts only where it sets the key); a key set nowhere
is unlimited. The rule is written once, here, and in :class:`sciplat.config.QuotasConfig`'s
docstring for operators.
"""

from __future__ import annotations

from collections.abc import Iterable

from sciplat.quotas.config import QuotaLimits, QuotasConfig
from sciplat.quotas.models import DEFAULT, QUOTA_KEYS, UNLIMITED, EffectiveQuota, Limit, Number


class QuotaResolver:
    """Turns the ``quotas`` section into each user's effective limits."""

    def __init__(self, config: QuotasConfig) -> None:
        self.config = config

    def effective(self, user_name: str, groups: Iterable[str]) -> EffectiveQuota:
        """Every limit of ``user_name``, a member of ``groups``, with its source."""
        group_names = tuple(sorted(set(groups)))
        return EffectiveQuota(
            user=user_name,
            groups=group_names,
            limits={key: self.limit(key, user_name, group_names) for key in QUOTA_KEYS},
        )

    def limit(self, key: str, user_name: str, groups: Iterable[str]) -> Limit:
        """The limit of one ``key`` for ``user_name`` in ``groups``.

        Raises:
            KeyError: ``key`` is not a quota key.
        """
        if key not in QUOTA_KEYS:
            raise KeyError(key)
        override = _value(self.config.users.get(user_name), key)
        if override is not None:
            return Limit(override, f"user:{user_name}")
        best = Limit(_value(self.config.default, key), DEFAULT)
        for group in sorted(set(groups)):
            granted = _value(self.config.groups.get(group), key)
            if granted is not None and (best.value is None or granted > best.value):
                best = Limit(granted, f"group:{group}")
        if best.value is None:
            return Limit(None, UNLIMITED)
        return best

    def group_storage(self, group: str) -> Limit:
        """The size limit of group ``group``'s shared directory: that group's own
        ``group_storage``, else the default's, else unlimited."""
        own = _value(self.config.groups.get(group), "group_storage")
        if own is not None:
            return Limit(own, f"group:{group}")
        default = _value(self.config.default, "group_storage")
        return Limit(default, DEFAULT) if default is not None else Limit(None, UNLIMITED)

    def named_entries(self) -> tuple[set[str], set[str]]:
        """The group and user names that have entries (to check they exist)."""
        return set(self.config.groups), set(self.config.users)


def _value(limits: QuotaLimits | None, key: str) -> Number | None:
    if limits is None:
        return None
    value: Number | None = getattr(limits, key)
    return value
