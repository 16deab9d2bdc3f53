"""Pre-forked lab servers: start, find, ask and stop the resident parent of each environment.

One parent per environment (``prefork_server.py`` run as root by the environment's own Python)
listens on ``<run>/prefork/<env id>-<stamp>.sock``. The stamp hashes what makes the imported
code current: the environment's ``pyvenv.cfg``, interpreter, ``site-packages`` directories (pip
changes their mtime on every install or removal), its ``jupyterhub-singleuser`` script, and
sciplat's two scripts. A lab start whose stamp has no live parent falls back to the plain
launcher and starts the current parent in the background; parents of an older stamp are
stopped then (their labs keep running). The directory is root-only (0700), the socket 0600.

Who starts parents: ``sciplat up`` (the supervisor) for every configured environment, and the
local backend lazily when it finds none. Who stops them: the supervisor when it stops.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from sciplat.labs.local.storage.processes import start_time

log = logging.getLogger(__name__)

SERVER = Path(__file__).with_name("prefork_server.py")
LAUNCHER = Path(__file__).with_name("launcher.py")
#: The parent's own environment: nothing of the platform's (and the first lines of every
#: lab's /proc/<pid>/environ, which a forked process cannot rewrite).
PARENT_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin"}
#: A unix socket's path must fit sockaddr_un.sun_path.
MAX_SOCKET_PATH = 107
#: How long a lab start waits for the forked child's reply (it has done the launcher's steps).
REPLY_TIMEOUT = 10.0


class PreforkUnavailable(Exception):
    """No usable parent for this environment now: start the lab the plain way."""


class PreforkFailed(Exception):
    """The forked child could not become the lab (the same steps would fail the plain way)."""


def lab_environment(command: tuple[str, ...] | list[str]) -> Path | None:
    """The environment whose standard lab server ``command`` is, or None.

    Only ``<env>/bin/jupyterhub-singleuser`` alone, a Python script of that environment's
    interpreter, qualifies: anything else (a job's command, extra arguments, a shell script)
    is started the plain way.
    """
    if len(command) != 1:
        return None
    script = Path(command[0])
    if script.name != "jupyterhub-singleuser" or script.parent.name != "bin":
        return None
    env = script.parent.parent
    try:
        with open(script, "rb") as f:
            first = f.readline(4096).strip()
    except OSError:
        return None
    return env if first == f"#!{env / 'bin' / 'python'}".encode() else None


def stamp(env: Path) -> str:
    """What the parent's imported code depends on, hashed (changes when the env changes)."""
    parts = [str(env)]
    paths = [env / "pyvenv.cfg", env / "bin" / "python", env / "bin" / "jupyterhub-singleuser",
             *sorted(env.glob("lib/python3*/site-packages")), SERVER, LAUNCHER]  # fmt: skip
    for p in paths:
        try:
            st = p.stat()
            parts.append(f"{p}:{st.st_mtime_ns}:{st.st_size}:{st.st_ino}")
        except OSError:
            parts.append(f"{p}:missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def env_id(env: Path) -> str:
    return hashlib.sha256(str(env).encode()).hexdigest()[:12]


class PreforkServers:
    """The parents of one platform instance, found through files under ``run_dir``."""

    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir

    def socket_path(self, env: Path) -> Path:
        return self.run_dir / f"{env_id(env)}-{stamp(env)}.sock"

    def _dirs(self) -> None:
        for d in (self.run_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.run_dir, 0o700)

    # -- asking for a lab -------------------------------------------------------------------
    def fork_lab(self, env: Path, launch: dict[str, Any], log_path: Path) -> int:
        """Have the parent of ``env`` fork a lab as ``launch`` says; returns the lab's pid.

        Blocks for the child's reply (it has joined the cgroup and dropped privileges by then).

        Raises:
            PreforkUnavailable: no current parent answers (one is being started): use the
                plain launcher.
            PreforkFailed: the child answered that it could not become the lab.
        """
        path = self.socket_path(env)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            try:
                sock.connect(str(path))
            except OSError as exc:
                self.ensure(env)
                raise PreforkUnavailable(f"no pre-forked server at {path}: {exc}") from exc
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                socket.send_fds(sock, [json.dumps(launch).encode()], [fd])
            finally:
                os.close(fd)
            sock.settimeout(REPLY_TIMEOUT)
            try:
                reply = json.loads(sock.recv(65536) or b"{}")
            except (OSError, ValueError) as exc:
                raise PreforkUnavailable(f"the pre-forked server did not answer: {exc}") from exc
        finally:
            sock.close()
        if "pid" in reply:
            return int(reply["pid"])
        if "error" in reply:
            raise PreforkFailed(str(reply["error"]))
        raise PreforkUnavailable("the forked child ended before it answered (see the lab's log)")

    # -- parents ----------------------------------------------------------------------------
    def ensure(self, env: Path) -> int | None:
        """Start the current parent of ``env`` unless it runs or is starting; stop parents of
        older stamps. Returns the parent's pid (None if the socket path is too long).

        Raises:
            OSError: the run directory or the parent's log cannot be made.
        """
        self._dirs()
        sock = self.socket_path(env)
        if len(str(sock)) > MAX_SOCKET_PATH:
            log.warning("pre-forked labs are off: %s is too long for a unix socket", sock)
            return None
        pid_file = sock.with_suffix(".pid")
        with open(self.run_dir / f"{env_id(env)}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running = _read_pid(pid_file)
            if running is not None:
                return running
            for old in self.run_dir.glob(f"{env_id(env)}-*.pid"):
                if old != pid_file:
                    _stop(old)
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()
            logfd = os.open(self.log_dir / f"{env_id(env)}.log",
                            os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)  # fmt: skip
            try:
                proc = subprocess.Popen(
                    [str(env / "bin" / "python"), "-I", str(SERVER), "--socket", str(sock)],
                    env={**PARENT_ENV, "PATH": f"{env / 'bin'}:{PARENT_ENV['PATH']}"},
                    stdin=subprocess.DEVNULL, stdout=logfd, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True, cwd="/",
                )  # fmt: skip
            finally:
                os.close(logfd)
            ticks = start_time(proc.pid)
            pid_file.write_text(f"{proc.pid} {ticks or 0} {env}\n")
            log.info("started the pre-forked server of %s (pid %d)", env, proc.pid)
            return proc.pid

    def warm(self, command: tuple[str, ...]) -> Path | None:
        """Start the parent for ``command``'s environment if it is a standard lab server
        (at ``sciplat up``, so the first lab is already fast); returns that environment.
        A failure is logged, never raised: labs then start the plain way."""
        env = lab_environment(command)
        if env is not None:
            try:
                self.ensure(env)
            except OSError as exc:
                log.warning("cannot start the pre-forked server of %s: %s", env, exc)
        return env

    def wait_ready(self, env: Path, timeout: float = 60.0) -> bool:
        """Start the parent of ``env`` if needed and wait until it serves (tests, bench)."""
        pid = self.ensure(env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket_path(env).exists():
                return True
            if pid is None or start_time(pid) is None:
                return False
            time.sleep(0.05)
        return False

    def parents(self) -> list[tuple[int, Path]]:
        """Running parents: (pid, environment)."""
        found = []
        for pid_file in sorted(self.run_dir.glob("*.pid")) if self.run_dir.is_dir() else ():
            pid = _read_pid(pid_file)
            if pid is not None:
                found.append((pid, Path(pid_file.read_text().split(maxsplit=2)[2].strip())))
        return found

    def stop_all(self) -> int:
        """Stop every parent (their labs keep running); returns how many were stopped."""
        stopped = 0
        for pid_file in self.run_dir.glob("*.pid") if self.run_dir.is_dir() else ():
            stopped += _stop(pid_file)
        return stopped


def _read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process (same start time) still runs."""
    try:
        pid_s, ticks_s, *_ = pid_file.read_text().split()
        pid, ticks = int(pid_s), int(ticks_s)
    except (OSError, ValueError):
        return None
    now = start_time(pid)
    return pid if now is not None and now == ticks else None


def _stop(pid_file: Path, timeout: float = 5.0) -> bool:
    """SIGTERM the parent in ``pid_file`` (SIGKILL after ``timeout``); remove its files."""
    pid = _read_pid(pid_file)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while start_time(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        if start_time(pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for f in (pid_file, pid_file.with_suffix(".sock")):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    return pid is not None
