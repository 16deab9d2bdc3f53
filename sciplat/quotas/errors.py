"""Quota errors. Each names the quota, the limit, the current use and what to do."""

from __future__ import annotations

from sciplat.errors import SciplatError
from sciplat.quotas.models import Number, format_amount, title


class QuotaExceededError(SciplatError):
    """A request would go over one of the user's quotas."""

    code = "quota_exceeded"
    status_code = 403

    def __init__(self, key: str, limit: Number, used: Number, advice: str) -> None:
        if limit == 0:
            message = f"{title(key)}: not allowed for your account (quota {key} is 0). {advice}"
        else:
            message = (
                f"{title(key)}: quota reached (quota {key}: limit {format_amount(key, limit)}, "
                f"in use {format_amount(key, used)}). {advice}"
            )
        super().__init__(message)
        self.key = key
        self.limit = limit
        self.used = used


class StorageLimitError(SciplatError):
    """A storage limit could not be set up or changed (tool missing, mount failed)."""

    code = "storage_limit"
    status_code = 500


class StorageShrinkError(StorageLimitError):
    """A home cannot get smaller than what it holds; nothing was changed."""

    code = "storage_shrink_refused"
    status_code = 409
