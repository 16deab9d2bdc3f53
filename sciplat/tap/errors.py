"""Errors of the TAP service. Each becomes a VOTable with QUERY_STATUS=ERROR in one place
(``app.py``); the message is written for the scientist who sent the query."""

from __future__ import annotations

from sciplat.errors import SciplatError


class TapError(SciplatError):
    """Base of every TAP error a caller sees."""

    code = "tap_error"
    status_code = 400


class AdqlSyntaxError(TapError):
    """The query is not ADQL (or uses a construct ADQL does not define)."""

    code = "adql_syntax"


class AdqlUnsupportedError(TapError):
    """Valid ADQL this service does not implement yet."""

    code = "adql_unsupported"


class UnknownTableError(TapError):
    """A table that is not in TAP_SCHEMA (or that the caller may not read)."""

    code = "unknown_table"


class UnknownColumnError(TapError):
    """A column that none of the query's tables has."""

    code = "unknown_column"


class TapParameterError(TapError):
    """A bad TAP request parameter (LANG, FORMAT, MAXREC, ...)."""

    code = "bad_parameter"


class TapAuthError(TapError):
    """No, an invalid or an insufficient API token."""

    code = "unauthorized"
    status_code = 401


class TapForbiddenError(TapError):
    """A valid token without the right to read what was asked for."""

    code = "forbidden"
    status_code = 403


class QueryFailedError(TapError):
    """The database refused or aborted the translated query (timeout, type error, ...)."""

    code = "query_failed"


class CatalogueLoadError(TapError):
    """A catalogue file that cannot be read or loaded."""

    code = "catalogue_load"


class TapThrottledError(TapError):
    """Over the caller's ``api_rate`` quota: HTTP 429 with Retry-After."""

    code = "throttled"
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TapQuotaError(TapError):
    """A quota forbids this (e.g. ``api_rate: 0``)."""

    code = "quota_exceeded"
    status_code = 403
