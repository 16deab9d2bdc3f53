"""Names are API: the one place that decides which user and group names are valid.

Names must be valid POSIX account names (so ``useradd`` and ``ls -l`` agree with the platform),
lower case, and must not shadow the host's system accounts.
"""

from __future__ import annotations

import hashlib
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


#: A Kubernetes object name part (DNS-1123 label): at most 63 characters of a-z, 0-9 and '-',
#: starting and ending with a letter or digit.
DNS_LABEL_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_DNS_LABEL = re.compile(DNS_LABEL_PATTERN)


def dns_label(name: str, max_length: int = 63) -> str:
    """``name`` as a DNS-1123 label of at most ``max_length`` characters, stable and
    collision-free: a name that is already a valid label stays as it is; any other is
    lower-cased, its forbidden characters become '-', and an 8-hex-digit hash of the original
    is appended, so ``a_b`` and ``a-b`` (or ``A-b``) never share a label.

    Raises:
        ValueError: ``max_length`` leaves no room for the hash suffix (below 10).
    """
    if max_length < 10:
        raise ValueError("a DNS label needs room for at least 10 characters")
    if len(name) <= max_length and _DNS_LABEL.match(name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[: max_length - 9].strip("-")
    return f"{base}-{digest}" if base else digest


def lab_namespace(prefix: str, user: str) -> str:
    """The Kubernetes namespace of ``user``'s labs: ``<prefix>-<user>`` as a DNS-1123 label.

    Raises:
        ValueError: ``prefix`` is not a DNS label of at most 20 characters.
    """
    if len(prefix) > 20 or not _DNS_LABEL.match(prefix):
        raise ValueError(
            f"namespace prefix {prefix!r} must be 1-20 lower-case letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    return f"{prefix}-{dns_label(user, 62 - len(prefix))}"
