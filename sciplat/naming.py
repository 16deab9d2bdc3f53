"""Names are API: the one place that decides which user and group names are valid.

Names must be valid POSIX account names (so ``useradd`` and ``ls -l`` agree with the platform),
lower case, and must not shadow the host's system accounts.
"""

from __future__ import annotations

import re

from sciplat.errors import InvalidNameError

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
_NAME = re.compile(NAME_PATTERN)

#: Names that would shadow system accounts or platform paths.
RESERVED = frozenset(
    {
        "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
        "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "systemd",
        "sshd", "messagebus", "postgres", "redis", "mysql", "admin-api", "hub", "api", "user",
        "users", "staff", "adm", "wheel", "sudo", "disk", "shadow", "utmp", "tty", "kmem",
        "sciplat", "jupyterhub", "services", "tap", "jobs", "dask", "files", "metrics",
    }
)  # fmt: skip


def check_name(name: str, what: str = "user") -> str:
    """Return ``name`` if it can be a platform user or group name.

    Raises:
        InvalidNameError: the name is malformed or reserved; the message says which rule.
    """
    if not _NAME.match(name):
        raise InvalidNameError(
            f"{what} name {name!r} is not allowed: use 1-32 characters, lower-case letters, "
            "digits, '-' or '_', starting with a letter"
        )
    if name in RESERVED:
        raise InvalidNameError(
            f"{what} name {name!r} is reserved for the system or the platform; choose another"
        )
    return name


def normalize_username(raw: str) -> str:
    """Map a provider's user name (e-mail, eppn, GitHub login) to a platform name.

    Lower-cased; the part before '@' of an e-mail or eppn; '.' and other characters become
    '-'; a leading digit gets a 'u' prefix. The result is checked with :func:`check_name`.

    Raises:
        InvalidNameError: nothing usable is left.
    """
    name = raw.strip().lower().split("@", 1)[0]
    name = re.sub(r"[^a-z0-9_-]+", "-", name).strip("-")
    if name and not name[0].isalpha():
        name = "u" + name
    return check_name(name[:32])
