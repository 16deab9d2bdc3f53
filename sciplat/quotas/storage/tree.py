"""Directory trees: how much they hold, copying one faithfully, checking two are the same.

Measuring walks with ``os.scandir`` (no ``du`` process: one walk in-process costs the same,
and needs no output parsing); it never follows symlinks, counts each inode once (hard links)
and stays on the starting directory's filesystem.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sciplat.quotas.storage.commands import run

_CHUNK = 1 << 20


@dataclass(frozen=True)
class TreeUsage:
    """Bytes allocated on disk (``st_blocks``, so sparse files count what they hold), regular
    files, and directories that could not be read (then ``size`` is a lower bound)."""

    size: int
    files: int
    unreadable: int = 0


def measure(path: Path) -> TreeUsage:
    """What the tree under ``path`` holds; a missing ``path`` holds nothing."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return TreeUsage(0, 0)
    seen: set[tuple[int, int]] = {(top.st_dev, top.st_ino)}
    size, files, unreadable = top.st_blocks * 512, 0, 0
    stack = [os.fspath(path)] if stat.S_ISDIR(top.st_mode) else []
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except OSError:
            unreadable += 1
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # removed while we walk
            if st.st_dev != top.st_dev or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            size += st.st_blocks * 512
            if stat.S_ISREG(st.st_mode):
                files += 1
            elif stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
    return TreeUsage(size, files, unreadable)


def copy_tree(source: Path, target: Path) -> None:
    """Copy everything below ``source`` into the existing directory ``target``, keeping
    owners, modes, times, hard links, symlinks, extended attributes and holes.

    GNU ``cp -a`` is used on purpose: it gets hard links, sparse files, ACLs, device nodes
    and the order of chown/chmod/utime right, which a hand-written copy would have to redo.

    Raises:
        StorageLimitError: the copy failed (e.g. the target is full).
    """
    run(
        ["cp", "-a", "--sparse=always", "--", f"{source}/.", os.fspath(target)],
        f"copy {source} to {target}",
    )


def _same_content(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True


def _difference(rel: str, a: str, sa: os.stat_result, b: str, sb: os.stat_result) -> str | None:
    """What differs between two entries that should be copies, or None."""
    problem = None
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
        problem = "different file types"
    elif stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode):
        problem = f"mode {oct(sa.st_mode & 0o7777)} became {oct(sb.st_mode & 0o7777)}"
    elif (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
        problem = f"owner {sa.st_uid}:{sa.st_gid} became {sb.st_uid}:{sb.st_gid}"
    elif stat.S_ISLNK(sa.st_mode) and os.readlink(a) != os.readlink(b):
        problem = "symlink target differs"
    elif stat.S_ISREG(sa.st_mode) and sa.st_size != sb.st_size:
        problem = f"size {sa.st_size} became {sb.st_size}"
    elif stat.S_ISREG(sa.st_mode) and not _same_content(a, b):
        problem = "content differs"
    return f"{rel}: {problem}" if problem else None


def compare_trees(
    original: Path, copy: Path, ignore_top: frozenset[str] = frozenset()
) -> list[str]:
    """Differences between ``original`` and ``copy`` (types, modes, owners, symlink targets,
    sizes and contents of files), at most 20; entries named in ``ignore_top`` directly below
    ``copy`` (such as ext4's ``lost+found``) are ignored. An empty list means equal.

    Raises:
        OSError: a directory cannot be read.
    """
    problems: list[str] = []
    stack = [""]
    while stack and len(problems) < 20:
        rel_dir = stack.pop()
        a_dir, b_dir = os.path.join(original, rel_dir), os.path.join(copy, rel_dir)
        names_a, names_b = set(os.listdir(a_dir)), set(os.listdir(b_dir))
        if not rel_dir:
            names_b -= ignore_top - names_a
        problems += [f"{os.path.join(rel_dir, n)}: missing in the copy" for n in names_a - names_b]
        problems += [f"{os.path.join(rel_dir, n)}: not in the original" for n in names_b - names_a]
        for name in sorted(names_a & names_b):
            rel = os.path.join(rel_dir, name)
            a, b = os.path.join(a_dir, name), os.path.join(b_dir, name)
            sa, sb = os.lstat(a), os.lstat(b)
            problem = _difference(rel, a, sa, b, sb)
            if problem:
                problems.append(problem)
            elif stat.S_ISDIR(sa.st_mode):
                stack.append(rel)
    return problems[:20]


def holds_files(path: Path) -> bool:
    """Whether anything but directories and symlinks lies below ``path`` (the platform's
    own links into group and shared directories do not count)."""
    for dirpath, _dirnames, filenames in os.walk(path):
        if any(not os.path.islink(os.path.join(dirpath, name)) for name in filenames):
            return True
    return False
