"""The pre-forked lab server: one resident parent per lab environment, one fork per lab.

Run as root by :mod:`sciplat.labs.local.storage.prefork` with the ENVIRONMENT's Python, by path
(``<env>/bin/python -I prefork_server.py --socket PATH``), so that what it imports is the
environment's jupyter_server, JupyterLab and jupyterhub.singleuser. Standard library only at
module level; the server code is imported in :func:`main`, then frozen (``gc.freeze``) so idle
labs keep sharing those pages with the parent.

The parent never reads a request: it accepts a connection on its unix socket (mode 0600 in a
root-only directory) and forks at once. The child reads the launch description (the same JSON
the launcher gets) and the log file's descriptor from the connection, becomes the lab
(:func:`_child`) and replies with its pid. So no user's token or environment is ever in the
parent's memory, and no lab inherits another's. The parent has no threads and no event loop;
it reaps its exited children on SIGCHLD, and exits on SIGTERM without touching its labs (they
are in their own sessions; no PR_SET_PDEATHSIG).

Hand-written because no library forks a jupyter_server per user with privilege dropping (the
jupyterhub "prespawn" ideas keep servers of one user warm, which does not share pages).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import importlib.util
import json
import os
import random
import runpy
import signal
import site
import socket
import sys
import traceback
from types import ModuleType
from typing import Any

#: What a plain lab start imports before it serves (the list was taken from ``sys.modules``
#: of a started lab, package by package); the ones missing from an environment are skipped.
PRELOAD = (
    "jupyterhub.singleuser",
    "jupyter_server.serverapp",
    "jupyter_server.services.contents.largefilemanager",
    "jupyter_server.services.kernels.kernelmanager",
    "jupyter_server.services.sessions.sessionmanager",
    *(f"jupyter_server.{m}.handlers" for m in (
        "kernelspecs", "nbconvert", "view", "services.api", "services.config",
        "services.contents", "services.events", "services.kernels", "services.kernelspecs",
        "services.nbconvert", "services.security", "services.sessions")),
    "jupyter_server.services.shutdown",
    "jupyter_server_terminals",
    "jupyterlab",
    "jupyterlab.labapp",
    "jupyterlab_server",
    "jupyter_lsp",
    "jupyter_lsp.virtual_documents_shadow",
    "notebook_shim",
    "notebook_shim.nbserver",
    "nbformat",
    "jupyter_events",
    "IPython",
    "httpx",
    "httpcore",  # httpx imports it when JupyterLab's extension manager makes its client
    "h11",
    "certifi",
    "jinja2.ext",
    "tornado.platform.asyncio",
    "traitlets.config.argcomplete_config",
)  # fmt: skip
#: Largest launch description accepted (the environment and the command line).
MAX_REQUEST = 1 << 20
#: How long a child waits for its request before giving up.
REQUEST_TIMEOUT = 10.0
#: How often an idle parent checks that its socket is still its own: a parent whose socket
#: was removed (its platform's data directory deleted, or replaced) exits by itself.
WATCH_SECONDS = 5.0


def load_launcher() -> ModuleType:
    """The launcher module beside this file, under a private name (the lab may have its own
    module called ``launcher``); its directory is not put on ``sys.path``."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")
    spec = importlib.util.spec_from_file_location("_sciplat_launcher", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the launcher from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def preload() -> list[str]:
    """Import the server's code; returns the modules that could not be imported."""
    missing = []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _reap(*_: object) -> None:
    """Collect every exited child (labs that ended); never blocks."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class _Stop(Exception):
    pass


def _stop(*_: object) -> None:
    raise _Stop


def serve(path: str, launcher: ModuleType) -> None:
    """Listen on ``path`` and fork a lab per connection until SIGTERM."""
    startup = {s: signal.getsignal(s) for s in signal.valid_signals() if _settable(s)}
    tmp = f"{path}.tmp{os.getpid()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old_umask = os.umask(0o177)
    try:
        listener.bind(tmp)
    finally:
        os.umask(old_umask)
    os.chmod(tmp, 0o600)
    listener.listen(128)
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    gc.freeze()  # keep the collector from writing to the shared pages of every lab
    os.rename(tmp, path)  # the socket appears only once the parent can serve
    inode = os.stat(path).st_ino
    print(f"sciplat prefork: {sys.prefix} serving on {path} (pid {os.getpid()})", flush=True)
    listener.settimeout(WATCH_SECONDS)
    try:
        while True:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                if _owner(path) != inode:
                    print("sciplat prefork: my socket is gone; stopping", flush=True)
                    return
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(conn, listener, startup, launcher)  # never returns
            conn.close()
    except _Stop:
        print("sciplat prefork: stopping (labs keep running)", flush=True)
    finally:
        listener.close()
        if _owner(path) == inode:  # still ours
            os.unlink(path)


def _owner(path: str) -> int:
    """The inode of the socket file at ``path`` (0 if gone)."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


def _settable(sig: int) -> bool:
    return sig not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(sig) is not None


def _child(
    conn: socket.socket,
    listener: socket.socket,
    startup: dict[signal.Signals, Any],
    launcher: ModuleType,
) -> None:
    """Become the lab described by the request on ``conn``; never returns."""
    code = 70
    try:
        os.close(listener.detach())
        for sig, handler in startup.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(-1)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.setsid()
        conn.settimeout(REQUEST_TIMEOUT)
        data, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 1)
        if not data and not fds:
            os._exit(0)  # a connection without a request (a liveness check)
        if len(fds) != 1:
            raise RuntimeError("the request carried no log file")
        os.dup2(fds[0], 1)
        os.dup2(fds[0], 2)
        keep = conn.fileno()
        os.closerange(3, keep)  # the log fd, and whatever the parent had open
        os.closerange(keep + 1, 1 << 20)
        spec = json.loads(data)
        try:
            launcher.prepare(spec)
            _become(spec)
        except Exception as exc:
            conn.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            raise
        conn.send(json.dumps({"pid": os.getpid()}).encode())
        conn.close()
        code = _run(spec["command"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        print("sciplat prefork: the lab could not start", file=sys.stderr, flush=True)
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _become(spec: dict[str, Any]) -> None:
    """The lab's process state: its environment only, fresh random state, its user site."""
    os.environ.clear()
    os.environ.update(spec["env"])  # putenv too: C code and subprocesses see the same
    random.seed()
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        ssl.RAND_add(os.urandom(32), 32.0)
    import tempfile  # noqa: PLC0415 - reset the cached directory (TMPDIR may differ)

    tempfile.tempdir = None
    _user_site()
    gc.collect()


def _user_site() -> None:
    """Put the user's site-packages where a plain start has it: after the environment's,
    before the system's (the parent ran with ``-I``, which leaves it out)."""
    site.USER_BASE = None
    site.USER_SITE = None
    user_site = site.getusersitepackages()
    if not os.path.isdir(user_site) or user_site in sys.path:
        return
    before = list(sys.path)
    site.addsitedir(user_site)  # appends, and runs its .pth files
    added = [p for p in sys.path if p not in before]
    for p in added:
        sys.path.remove(p)
    system = next(
        (i for i, p in enumerate(sys.path)
         if p.endswith(("site-packages", "dist-packages")) and not p.startswith(sys.prefix)),
        len(sys.path),
    )  # fmt: skip
    sys.path[system:system] = added


def _run(command: list[str]) -> int:
    """Run the environment's console script (``jupyterhub-singleuser``) in this process."""
    sys.argv = list(command)
    sys.path.insert(0, os.path.dirname(command[0]))  # as when the script is exec'd
    runpy.run_path(command[0], run_name="__main__")
    return 0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="pre-forked lab server (run by sciplat)")
    ap.add_argument("--socket", required=True, help="unix socket to listen on")
    args = ap.parse_args(argv)
    if sys.flags.no_user_site != 1:
        sys.exit("prefork_server.py must run with -I (no user site, no PYTHON* variables)")
    launcher = load_launcher()
    missing = preload()
    if "jupyterhub.singleuser" in missing:
        sys.exit(f"{sys.prefix} has no jupyterhub.singleuser: not a lab environment")
    if missing:
        print(f"sciplat prefork: not in this environment: {', '.join(missing)}", flush=True)
    serve(args.socket, launcher)


if __name__ == "__main__":
    main()
