"""Password hashing with argon2id (argon2-cffi's defaults follow RFC 9106)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verifying against this hash when the user does not exist keeps the time of a failed login
# the same for known and unknown names.
_DUMMY_HASH = _HASHER.hash("sciplat-no-such-user")


def hash_password(password: str) -> str:
    """Return an argon2id hash of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True if ``password`` matches ``stored``; a missing hash never matches."""
    try:
        if not stored:
            _HASHER.verify(_DUMMY_HASH, password)  # same time as a real check
            return False
        return bool(_HASHER.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False
