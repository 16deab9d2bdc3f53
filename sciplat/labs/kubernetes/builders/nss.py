"""The lab's /etc/passwd and /etc/group as a ConfigMap: the image's base entries plus the
user's own (the platform's UID, GID and home) and their groups (the platform's GIDs).

A pod runs with the platform's UID on a read-only root filesystem, so the image's files
cannot be edited at start; without an entry, ``whoami`` fails, ``id`` and ``ls -l`` show bare
numbers, and Python's ``site`` cannot find the user site for ``pip install --user``. The
ConfigMap's two keys are mounted with ``subPath`` over the image's files (the nublado lab
controller does the same).
"""

from __future__ import annotations

from collections.abc import Sequence

from sciplat.labs.kubernetes.builders.common import MANAGED_BY, user_labels
from sciplat.labs.kubernetes.config import NssFiles
from sciplat.labs.kubernetes.models import KubeObject, LabGroup
from sciplat.labs.models import LabSpec

NSS_NAME = "sciplat-nss"
#: the sciplat lab image's files (images/lab): Debian 12's base-passwd entries and ``lab``
IMAGE_PASSWD = "".join(
    f"{line}\n"
    for line in (
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin",
        "sys:x:3:3:sys:/dev:/usr/sbin/nologin",
        "sync:x:4:65534:sync:/bin:/bin/sync",
        "games:x:5:60:games:/usr/games:/usr/sbin/nologin",
        "man:x:6:12:man:/var/cache/man:/usr/sbin/nologin",
        "lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin",
        "mail:x:8:8:mail:/var/mail:/usr/sbin/nologin",
        "news:x:9:9:news:/var/spool/news:/usr/sbin/nologin",
        "uucp:x:10:10:uucp:/var/spool/uucp:/usr/sbin/nologin",
        "proxy:x:13:13:proxy:/bin:/usr/sbin/nologin",
        "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin",
        "backup:x:34:34:backup:/var/backups:/usr/sbin/nologin",
        "list:x:38:38:Mailing List Manager:/var/list:/usr/sbin/nologin",
        "irc:x:39:39:ircd:/run/ircd:/usr/sbin/nologin",
        "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        "lab:x:1000:1000::/home/lab:/bin/bash",
    )
)
IMAGE_GROUP = "".join(
    f"{name}:x:{gid}:\n"
    for name, gid in (
        ("root", 0), ("daemon", 1), ("bin", 2), ("sys", 3), ("adm", 4), ("tty", 5),
        ("disk", 6), ("lp", 7), ("mail", 8), ("news", 9), ("uucp", 10), ("man", 12),
        ("proxy", 13), ("kmem", 15), ("dialout", 20), ("fax", 21), ("voice", 22),
        ("cdrom", 24), ("floppy", 25), ("tape", 26), ("sudo", 27), ("audio", 29), ("dip", 30),
        ("www-data", 33), ("backup", 34), ("operator", 37), ("list", 38), ("irc", 39),
        ("src", 40), ("shadow", 42), ("utmp", 43), ("video", 44), ("sasl", 45),
        ("plugdev", 46), ("staff", 50), ("games", 60), ("users", 100), ("lab", 1000),
        ("nogroup", 65534),
    )
)  # fmt: skip


def _entry_name(value: str, what: str) -> str:
    if not value or any(c in value for c in ":\n,") or value.strip() != value:
        raise ValueError(f"{what} {value!r} cannot be written to /etc/passwd or /etc/group")
    return value


def _base(text: str, names: set[str], ids: set[int]) -> list[str]:
    """The base file's lines, without those whose name or id the platform's entries take
    (a group called ``users`` or a UID the image also uses must resolve to the platform's)."""
    kept = []
    for line in text.splitlines():
        parts = line.split(":")
        if line and parts[0] not in names and int(parts[2]) not in ids:
            kept.append(line)
    return kept


def passwd_and_group(files: NssFiles, spec: LabSpec, groups: Sequence[LabGroup]) -> tuple[str, str]:
    """The two files' text: base entries, then ``user:x:UID:GID::HOME:/bin/bash``, then the
    user's private group (``user:x:GID:``; ``gGID`` if a platform group has the user's name)
    and each group with the user as its member (a GID of ``spec.groups`` missing from
    ``groups`` is named ``gGID``).

    Raises:
        ValueError: a name holds ':', ',' or a newline, or a GID is 0.
    """
    user = _entry_name(spec.user, "user name")
    own = list({g.gid: g for g in groups if g.gid != spec.gid}.values())
    named = {g.gid for g in own}
    # a GID the lab runs with but whose name is unknown still gets an entry (``id`` and
    # ``ls -l`` show gGID rather than a bare number)
    own += [
        LabGroup(f"g{gid}", gid, False) for gid in sorted(set(spec.groups) - named - {spec.gid})
    ]
    if 0 in (spec.uid, spec.gid) or any(g.gid == 0 for g in own):
        raise ValueError(f"lab of {spec.user!r}: UID, GID and groups must not be 0 (root)")
    names = {_entry_name(g.name, "group name") for g in own}
    # the private group is named after the user, unless a platform group has that name
    private = f"g{spec.gid}" if user in names else user
    passwd = _base(files.base_passwd or IMAGE_PASSWD, {user}, {spec.uid})
    passwd.append(f"{user}:x:{spec.uid}:{spec.gid}::{spec.home}:/bin/bash")
    ids = {spec.gid, *(g.gid for g in own)}
    group = _base(files.base_group or IMAGE_GROUP, {private, *names}, ids)
    group.append(f"{private}:x:{spec.gid}:")
    group += [f"{g.name}:x:{g.gid}:{user}" for g in sorted(own, key=lambda g: g.gid)]
    return "\n".join(passwd) + "\n", "\n".join(group) + "\n"


def build_nss(
    files: NssFiles, spec: LabSpec, groups: Sequence[LabGroup], namespace: str
) -> KubeObject:
    """The ConfigMap ``sciplat-nss`` (keys ``passwd`` and ``group``) of the user's namespace.

    Raises:
        ValueError: see :func:`passwd_and_group`.
    """
    passwd, group = passwd_and_group(files, spec, groups)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": NSS_NAME,
            "namespace": namespace,
            "labels": {**MANAGED_BY, **user_labels(spec.user)},
        },
        "data": {"passwd": passwd, "group": group},
    }
