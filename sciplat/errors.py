"""Errors a user or operator sees. Each says what went wrong and what to do.

All derive from :class:`SciplatError`, which carries a stable ``code`` and the HTTP status it
maps to; the mapping to HTTP responses, JupyterHub's ``SpawnException`` and CLI exit codes
happens in one place each (``hub/``, ``cli.py``).
"""

from __future__ import annotations


class SciplatError(Exception):
    """Base of every user-facing error."""

    code = "error"
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(SciplatError):
    """The configuration document is invalid or unreadable."""

    code = "invalid_config"
    status_code = 500


class InvalidNameError(SciplatError):
    """A user or group name that cannot be used."""

    code = "invalid_name"


class NotFoundError(SciplatError):
    """A user, group or object that does not exist."""

    code = "not_found"
    status_code = 404


class ConflictError(SciplatError):
    """The thing exists already, or clashes with something that does."""

    code = "conflict"
    status_code = 409


class AuthError(SciplatError):
    """Login refused."""

    code = "auth_failed"
    status_code = 403


class ThrottledError(SciplatError):
    """Too many attempts; ``retry_after`` says how many seconds to wait."""

    code = "throttled"
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidOptionError(SciplatError):
    """A spawn option (environment, size, flag) the user may not ask for."""

    code = "invalid_option"


class LabError(SciplatError):
    """A lab could not be started or stopped; the message says why and what to do."""

    code = "lab_failed"
    status_code = 500

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class StorageError(SciplatError):
    """A home, group directory or storage root is missing or unusable."""

    code = "storage"
    status_code = 500
