"""A real platform for tests: `sciplat up` in a subprocess on free loopback ports, with its own
data directory, storage root, cgroup parent and UID range, and one shared lab environment.

Nothing is faked: the hub, the proxy and the labs are the real processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from sciplat.config import Config
from sciplat.labs.environments.service import lab_modules, lab_requirements
from sciplat.labs.environments.storage import build_venv, install_modules

REPO = Path(__file__).resolve().parents[2]
SCIPLAT = [sys.executable, "-m", "sciplat"]
#: Every test user's name starts with this, so leftovers of a crashed run can be found.
TEST_PREFIX = "sptest"
ENV_CACHE = Path("/var/tmp/sciplat-test-envs")
TEST_STORAGE = Path("/srv/sciplat-test")


def wait_for(
    condition: Callable[[], Any], timeout: float = 30, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def lab_environment() -> Path:
    """The shared test lab environment (built once per machine and requirements set)."""
    reqs = lab_requirements()
    # the build recipe's version is part of the key: a changed recipe builds a new environment
    key = hashlib.sha256("\n".join(["recipe 2: system site", *reqs]).encode()).hexdigest()[:12]
    path = ENV_CACHE / key
    ENV_CACHE.mkdir(parents=True, exist_ok=True, mode=0o755)
    os.chmod(ENV_CACHE, 0o755)
    with open(ENV_CACHE / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "bin" / "jupyterhub-singleuser").exists():
            build_venv(path, reqs, ENV_CACHE / f"{key}.log")
        install_modules(path, lab_modules())  # cheap when current, like an env build does
    return path


def clone_environment(src: Path, dst: Path) -> Path:
    """A second environment that shares ``src``'s files (hard links) but is its own prefix:
    scripts whose shebang names ``src`` are rewritten (as copies, not links)."""
    if (dst / "bin" / "jupyterhub-singleuser").exists():
        return dst
    tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["cp", "-al", str(src), str(tmp)], check=True)
    old, new = f"#!{src}/".encode(), f"#!{dst}/".encode()
    for script in (tmp / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if data.startswith(old):
            mode = script.stat().st_mode
            script.unlink()
            script.write_bytes(new + data[len(old) :])
            script.chmod(mode)
    tmp.rename(dst)
    return dst


def broken_environment() -> Path:
    """An environment whose server fails at once, like one with a broken package."""
    path = ENV_CACHE / "broken"
    server = path / "bin" / "jupyterhub-singleuser"
    if not server.exists():
        server.parent.mkdir(parents=True, exist_ok=True)
        server.write_text(
            "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
            "echo \"ImportError: cannot import name 'ServerApp' from 'jupyter_server'\" >&2\n"
            "exit 1\n"
        )
        server.chmod(0o755)
        for d in (path, path / "bin"):
            d.chmod(0o755)
    return path


def random_suffix(n: int = 4) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(n))


def remove_test_accounts() -> None:
    """Delete host accounts and groups left by finished test runs: ours by name prefix, and
    only those whose run's storage is gone (another run may be going on at the same time)."""
    if os.geteuid() != 0:
        return
    live = {p.name for p in TEST_STORAGE.iterdir()} if TEST_STORAGE.exists() else set()

    def stale(name: str) -> bool:
        return name.startswith(TEST_PREFIX) and name[len(TEST_PREFIX) :][:4] not in live

    for entry in pwd.getpwall():
        if stale(entry.pw_name) and entry.pw_gecos == "sciplat user":
            subprocess.run(["userdel", entry.pw_name], capture_output=True, check=False)
    for g in grp.getgrall():
        if stale(g.gr_name):
            subprocess.run(["groupdel", g.gr_name], capture_output=True, check=False)


def mounts_under(root: Path) -> list[Path]:
    """Mount points below ``root`` in this mount namespace, deepest first."""
    prefix = str(root).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((Path(p) for p in points if p.startswith(prefix)), key=lambda p: -len(p.parts))


def remove_test_cgroups(run_id: str | None = None) -> None:
    """Remove the (empty) parent cgroups of test platforms: one run's, or every finished
    run's (whose storage is gone)."""
    live = {p.name for p in TEST_STORAGE.iterdir()} if TEST_STORAGE.exists() else set()
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for parent in hierarchy.glob("sciplat-test-*") if hierarchy.is_dir() else ():
            rid = parent.name.removeprefix("sciplat-test-")
            if (run_id is None and rid not in live) or rid == run_id:
                with contextlib.suppress(OSError):
                    parent.rmdir()


@dataclass
class Platform:
    """One platform instance's files and settings; :meth:`up` starts it."""

    root: Path
    config: dict[str, Any]
    run_id: str
    proc: subprocess.Popen[bytes] | None = None
    ports: list[int] = field(default_factory=lambda: free_ports(3))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SCIPLAT_DATA_DIR": str(self.data_dir),
            "SCIPLAT_CGROUP_PARENT": f"sciplat-test-{self.run_id}",
            "PYTHONUNBUFFERED": "1",
        }

    def user(self, name: str) -> str:
        """A platform user name unique to this run."""
        return f"{TEST_PREFIX}{self.run_id}{name}"[:32]

    def uid_of(self, user: str) -> int:
        """The UID the platform gave ``user`` (``sciplat user list``)."""
        users = json.loads(self.sciplat("user", "list", "--json").stdout)
        return int(next(u["uid"] for u in users if u["name"] == user))

    def home_of(self, user: str) -> Path:
        """``user``'s home under this platform's storage root."""
        return Config.model_validate(self.config).volumes.home_path(user)

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.data_dir / "sciplat.yaml").write_text(yaml.safe_dump(self.config))

    def sciplat(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*SCIPLAT, *args], env=self.env, input=input, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"sciplat {' '.join(args)} failed:\n{result.stderr}")
        return result

    def add_user(
        self, name: str, groups: tuple[str, ...] = (), password: str = "", admin: bool = False
    ) -> str:
        full = self.user(name)
        args = ["user", "add", full, *[a for g in groups for a in ("--group", g)]]
        args += ["--admin"] if admin else []
        self.sciplat(*args, "--password-stdin", input=(password or "pw-" + full) + "\n")
        return full

    def token(self, name: str, *extra: str) -> str:
        return self.sciplat("token", name, *extra).stdout.strip()

    # -- lifecycle ------------------------------------------------------------------------------
    def up(self, timeout: float = 90) -> None:
        self.write_config()
        log = open(self.root / "up.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [*SCIPLAT, "up"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for(self.ready, timeout, 0.1, f"the platform at {self.url} ({self.root}/up.log)")

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"sciplat up exited:\n{(self.root / 'up.log').read_text()[-3000:]}"
            )
        try:
            return httpx.get(f"{self.url}/hub/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def down(self) -> None:
        self.sciplat("down", check=False)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def pid(self, process: str) -> int:
        return int((self.data_dir / "run" / f"{process}.pid").read_text())

    # -- hub API --------------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.url}/hub/api{path}", headers={"Authorization": f"token {token}"},
            timeout=120, **kw,
        )  # fmt: skip

    def start_lab(self, user: str, token: str, server: str = "", **options: str) -> None:
        """Ask the hub for a lab and wait until it answers through the proxy."""
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        r = self.api("POST", path, token, json=options or None)
        if r.status_code not in (201, 202):
            raise AssertionError(f"spawn of {user} refused: {r.status_code} {r.text}")
        prefix = f"/user/{user}/{server + '/' if server else ''}"
        wait_for(
            lambda: self.lab_get(prefix + "api", token).status_code == 200,
            120, 0.1, f"the lab of {user}",
        )  # fmt: skip

    def stop_lab(self, user: str, token: str) -> None:
        """Ask the hub to stop the user's default lab and wait until it is gone."""
        r = self.api("DELETE", f"/users/{user}/server", token)
        if r.status_code not in (202, 204):
            raise AssertionError(f"stop of {user} refused: {r.status_code} {r.text}")
        wait_for(lambda: not self.api("GET", f"/users/{user}", token).json()["servers"],
                 60, 0.2, f"the lab of {user} to stop")  # fmt: skip

    def lab_get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", headers={"Authorization": f"token {token}"}, timeout=30
        )

    def lab_state(self, user: str, admin_token: str) -> dict[str, Any]:
        r = self.api("GET", f"/users/{user}", admin_token, params={"include_stopped_servers": 1})
        r.raise_for_status()
        return dict(json.loads(r.text))


UID_BASE, GID_BASE, BLOCK, BLOCKS = 400_000, 1_400_000, 1000, 500


def free_block(run_root: Path) -> int:
    """A UID/GID block (see :func:`platform_config`) that no host account or group and no
    other live test platform uses, recorded in ``run_root/block``.

    A random pick among 500 blocks is not enough: the platforms of one suite collide with
    birthday odds (about 20 % for 15 of them), and then a finished platform's host group still
    holds a GID the next one allocates ("GID ... is taken by host group ...")."""
    TEST_STORAGE.mkdir(parents=True, exist_ok=True)
    with open(TEST_STORAGE / ".blocks.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        taken = set()
        for marker in TEST_STORAGE.glob("*/block"):
            with contextlib.suppress(OSError, ValueError):
                taken.add(int(marker.read_text()))
        ids = [e.pw_uid for e in pwd.getpwall()] + [e.pw_gid for e in pwd.getpwall()]
        ids += [g.gr_gid for g in grp.getgrall()]
        for i in ids:
            for base in (UID_BASE, GID_BASE):
                if base <= i < base + BLOCK * BLOCKS:
                    taken.add((i - base) // BLOCK)
        free = [b for b in range(BLOCKS) if b not in taken]
        if not free:
            raise RuntimeError(f"no free test UID block: {len(taken)} of {BLOCKS} in use")
        block = secrets.choice(free)
        (run_root / "block").write_text(str(block))
    return block


def platform_config(root: Path, env_path: Path, ports: list[int], block: int) -> dict[str, Any]:
    """A config for tests: small sizes, the shared environment, a UID block of its own."""
    return {
        "auth": {"provider": "local", "local": {"max_failures": 3, "lockout_seconds": 60}},
        "identity": {
            "uid_range": [UID_BASE + block * BLOCK, UID_BASE + (block + 1) * BLOCK - 1],
            "gid_range": [GID_BASE + block * BLOCK, GID_BASE + (block + 1) * BLOCK - 1],
        },
        "sizes": [
            {"name": "tiny", "cpu": 0.5, "memory": "512MiB", "pids": 256, "default": True},
            {"name": "small", "cpu": 1, "memory": "1GiB", "pids": 512},
        ],
        "environments": [
            {
                "name": "test",
                "display_name": "Test environment",
                "kind": "release",
                "created": "2026-11-01",
                "path": str(env_path),
                "recommended": True,
            },
            {
                "name": "weekly-clone",
                "display_name": "Weekly clone",
                "kind": "weekly",
                "created": "2026-11-20",
                "path": str(clone_environment(env_path, env_path.with_name(env_path.name + "-w"))),
            },
            {
                "name": "broken",
                "display_name": "Broken environment",
                "kind": "experimental",
                "created": "2026-11-25",
                "path": str(broken_environment()),
            },
            {
                "name": "gone",
                "display_name": "Removed environment",
                "kind": "daily",
                "created": "2026-11-27",
                "path": str(ENV_CACHE / "does-not-exist"),
            },
        ],
        "volumes": {"root": str(root / "storage")},
        "culling": {"idle_timeout": 0, "max_age": 0},
        "services": {
            "tap": {"enabled": False},
            "jobs": {"enabled": False},
            "dask": {"enabled": False},
        },
        "hub": {
            "bind": "127.0.0.1",
            "port": ports[0],
            "proxy_api_port": ports[1],
            "hub_port": ports[2],
            "spawn_timeout": 90,
        },
    }


@contextlib.contextmanager
def running_platform(**overrides: Any) -> Iterator[Platform]:
    """Start a platform, yield it, and stop it and its labs (and remove its files)."""
    run_id = random_suffix()
    root = TEST_STORAGE / run_id
    root.mkdir(parents=True, mode=0o755)
    os.chmod(TEST_STORAGE, 0o755)
    ports = free_ports(3)
    config = platform_config(root, lab_environment(), ports, free_block(root))
    for section, values in overrides.items():
        if isinstance(values, dict):
            config.setdefault(section, {}).update(values)
        else:
            config[section] = values
    platform = Platform(root=root, config=config, run_id=run_id, ports=ports)
    try:
        platform.up()
        yield platform
    finally:
        platform.down()
        # keep the logs for whoever reads a failed run (test-artifacts/ is git-ignored)
        keep = REPO / "test-artifacts" / f"platform-{run_id}"
        with contextlib.suppress(OSError):
            shutil.copytree(platform.data_dir / "logs", keep, dirs_exist_ok=True)
            shutil.copy2(root / "up.log", keep / "up.log")
        left = mounts_under(root)
        for point in left:  # `sciplat down` releases home images; never delete into a mount
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
        remove_test_cgroups(run_id)
        remove_test_accounts()  # this run's, now that its storage is gone
        assert not left, f"sciplat down left mounts behind: {left}"


# -- labs without a hub (backend tests, bench/idle_labs.py) -------------------------------------
@contextlib.contextmanager
def hub_api_stub() -> Iterator[str]:
    """A stand-in for the hub's REST API, for labs started by the backend alone: the
    single-user server checks it once at start (it exits when it cannot) and posts activity.
    Answers every GET with the hub's version header and every POST with 200; yields the API
    URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import jupyterhub

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b'{"version": "%s"}' % jupyterhub.__version__.encode()
            self.send_response(200)
            self.send_header("X-JupyterHub-Version", jupyterhub.__version__)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    finally:
        server.shutdown()
        server.server_close()


def standalone_lab_env(
    env_path: Path, user: str, home: Path, port: int, api_url: str, token: str
) -> dict[str, str]:
    """The variables a lab gets from the hub (as the spawner sets them), for ``hub_api_stub``."""
    prefix = f"/user/{user}/"
    return {
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PATH": f"{env_path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "USER": user,
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
        "JUPYTERHUB_API_URL": api_url,
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_USER": user,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{prefix}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_HOST": "",
    }


def standalone_lab_spec(
    env_path: Path,
    root: Path,
    name: str,
    uid: int,
    api_url: str,
    token: str,
    memory: int = 512 * 2**20,
) -> Any:
    """A ``LabSpec`` for a lab of uid ``uid`` (no host account needed: the launcher only sets
    ids) with its home under ``root/homes``, started by the backend without a hub."""
    from sciplat.labs.models import LabLimits, LabSpec

    home = root / "homes" / name
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home.parent, 0o755)
    os.chown(home, uid, uid)
    port = free_ports(1)[0]
    return LabSpec(
        user=name, server="", uid=uid, gid=uid, groups=(), home=home, environment="test",
        size="tiny", command=(str(env_path / "bin" / "jupyterhub-singleuser"),),
        env=standalone_lab_env(env_path, name, home, port, api_url, token),
        limits=LabLimits(cpu=0.5, memory=memory, pids=256), ip="127.0.0.1", port=port,
        log_path=root / "logs" / f"{name}.log",
    )  # fmt: skip
