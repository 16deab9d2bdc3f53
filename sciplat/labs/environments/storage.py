"""Building Python environments for labs on disk (venv + pip)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from sciplat.errors import SciplatError

#: Interpreters every user can run; a pyenv or venv Python under root's 0700 home is not one.
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


def base_python() -> str:
    """An interpreter outside any private home, to build world-usable environments from."""
    for candidate in SYSTEM_PYTHONS:
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("python3")
    if found is None:
        raise SciplatError("no python3 found to build lab environments; install python3-venv")
    return found


def build_venv(path: Path, requirements: list[str], log: Path) -> None:
    """Create a venv at ``path`` and pip-install ``requirements``; readable by everyone.

    Raises:
        SciplatError: venv or pip failed; the message points at the log.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        for cmd in (
            # with the system's site-packages, Python enables the user site, so
            # `pip install --user` works in labs (user packages come after the environment's)
            [base_python(), "-m", "venv", "--clear", "--system-site-packages", str(path)],
            [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
             "-q", "--upgrade", "pip"],
            [str(path / "bin" / "python"), "-m", "pip", "install",
             "--disable-pip-version-check", "-q", *requirements],
        ):  # fmt: skip
            result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
            if result.returncode != 0:
                raise SciplatError(
                    f"building the environment at {path} failed at `{' '.join(cmd[:4])} ...`; "
                    f"see {log}"
                )
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                mode = os.stat(p).st_mode
                os.chmod(p, mode | 0o044 | (0o011 if mode & 0o100 else 0))
    os.chmod(path, 0o755)  # noqa: S103 - every user runs labs from it


def install_modules(path: Path, modules: Mapping[str, Path]) -> None:
    """Copy single-file modules (name -> source file) into the environment's site-packages,
    readable by everyone; a copy that is already current is left alone.

    Raises:
        SciplatError: the environment's Python cannot say where its site-packages are, or
            they cannot be written.
    """
    if not modules:
        return
    result = subprocess.run(
        [str(path / "bin" / "python"), "-I", "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SciplatError(f"cannot find the site-packages of {path}: {result.stderr.strip()}")
    site = Path(result.stdout.strip())
    for name, source in modules.items():
        target = site / f"{name}.py"
        content = source.read_bytes()
        if target.exists() and target.read_bytes() == content:
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            tmp.write_bytes(content)
            tmp.chmod(0o644)
            tmp.replace(target)
        except OSError as exc:
            raise SciplatError(f"cannot add {name} to {path}: {exc.strerror}") from exc


def installed_packages(path: Path) -> list[str]:
    """``pip freeze`` of the environment (empty if it cannot run)."""
    result = subprocess.run(
        [str(path / "bin" / "python"), "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return sorted(result.stdout.split()) if result.returncode == 0 else []
