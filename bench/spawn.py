"""Lab start latency and idle memory: stock JupyterHub (SimpleLocalProcessSpawner) vs sciplat.

Run from the checkout, as root: ``.venv/bin/python bench/spawn.py [--cycles 5] [--users 10]``.
See bench/README.md for what each number means.

Both systems run in one invocation, stock first, then sciplat (each with one unmeasured
warm-up start). Both use the SAME lab environment (tests.support.platform.lab_environment()).
Everything this script starts (hubs, proxies, labs) is stopped at the end by pid, also on
Ctrl-C or error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python bench/spawn.py` puts bench/, not the repo, first

from sciplat.labs.local.storage.prefork import PreforkServers  # noqa: E402
from tests.support.platform import (  # noqa: E402
    Platform,
    free_ports,
    lab_environment,
    running_platform,
)

CHP = REPO / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
POLL = 0.05  # s between readiness probes through the proxy
READY_DEADLINE = 150.0  # s per lab start (sciplat's spawn_timeout is 90 s, +30 s hub slack)
STOP_DEADLINE = 60.0
HUB_DEADLINE = 90.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
LAB_LINE = re.compile(
    r"^\[[A-Z] (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) "
    r"(?:ServerApp|LabApp|JupyterHubSingleUser|NotebookApp)\] (.*)$"
)


# -- processes --------------------------------------------------------------------------------
def start_ticks(pid: int) -> int | None:
    """Kernel start time of ``pid`` (ticks since boot); None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (by parent pid)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if start_ticks(pid) is None:
            continue
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_seconds(pids: list[int]) -> float:
    """User+system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory(pids: list[int]) -> tuple[float, float]:
    """Summed RSS and PSS (MB) of ``pids`` from /proc/<pid>/smaps_rollup."""
    rss = pss = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key == "Rss":
                    rss += int(rest.split()[0])
                elif key == "Pss":
                    pss += int(rest.split()[0])
    return rss / 1024, pss / 1024


class Reaper:
    """Every process this script started or found for its labs, killed at the end if alive.

    A pid is only signalled if its kernel start time is still the recorded one."""

    def __init__(self) -> None:
        self.procs: dict[int, int] = {}

    def add(self, *pids: int) -> None:
        for pid in pids:
            ticks = start_ticks(pid)
            if ticks is not None:
                self.procs.setdefault(pid, ticks)

    def alive(self) -> list[int]:
        return [p for p, t in self.procs.items() if start_ticks(p) == t]

    def kill_all(self, grace: float = 5.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.alive()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.procs.clear()


REAPER = Reaper()


# -- statistics -------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (p95 of 5 samples lies between the two largest)."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# -- one lab start ------------------------------------------------------------------------------
@dataclass
class Start:
    user: str
    latency: float | None = None  # s from POST to 200 through the proxy
    error: str = ""
    post_status: int = 0
    post_seconds: float = 0.0
    t_wall: float = 0.0  # request time, wall clock (to compare with log timestamps)
    t_boot: float = 0.0  # request time, CLOCK_BOOTTIME (to compare with /proc start times)
    phases: dict[str, float] = field(default_factory=dict)
    how: str = ""  # sciplat: "pre-forked" or "launcher"


class System(Protocol):
    name: str
    url: str

    def token(self, user: str) -> str: ...
    def lab_pids(self, user: str) -> list[int]: ...
    def main_pid(self, user: str) -> int | None: ...
    def lab_log(self, user: str) -> str: ...
    def infra_pids(self) -> list[int]: ...
    def throttled(self, user: str) -> float | None: ...


async def wait_spawned(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> str:
    """Follow the hub's progress event stream until the spawn ends; '' if it became ready.

    The event stream (not polling) keeps the measurement from loading the hub and proxy."""
    timeout = httpx.Timeout(10, read=30)  # the hub sends a keepalive comment every 8 s
    async with client.stream("GET", url, headers=headers, timeout=timeout) as r:
        if r.status_code != 200:
            return f"progress stream: {r.status_code}"
        async for line in r.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready"):
                return ""
            if event.get("failed"):
                return f"spawn failed: {event.get('message', '')[:300]}"
    return "progress stream ended before the lab was ready"


async def start_lab(client: httpx.AsyncClient, system: System, user: str) -> Start:
    """POST the start request; on 202 follow the spawn's progress events; then GET
    /user/<name>/api through the proxy until it answers 200."""
    headers = {"Authorization": f"token {system.token(user)}"}
    api = f"{system.url}/hub/api/users/{user}/server"
    s = Start(user, t_wall=time.time(), t_boot=time.clock_gettime(time.CLOCK_BOOTTIME))
    t0 = time.monotonic()
    try:
        r = await client.post(api, headers=headers, timeout=READY_DEADLINE)
        s.post_status, s.post_seconds = r.status_code, time.monotonic() - t0
        if r.status_code not in (201, 202):
            s.error = f"POST {r.status_code}: {r.text[:300]}"
            return s
        if r.status_code == 202:
            left = READY_DEADLINE - (time.monotonic() - t0)
            s.error = await asyncio.wait_for(
                wait_spawned(client, f"{api}/progress", headers), max(left, 0.1)
            )
            if s.error:
                return s
    except (httpx.HTTPError, TimeoutError) as exc:
        s.error = f"not ready after {time.monotonic() - t0:.0f} s: {exc!r}"
        return s
    last: object = None
    while True:  # normally one request: the hub adds the route before it reports ready
        try:
            g = await client.get(f"{system.url}/user/{user}/api", headers=headers, timeout=5)
            if g.status_code == 200:
                s.latency = time.monotonic() - t0
                return s
            last = g.status_code
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() - t0 > READY_DEADLINE:
            s.error = f"not ready after {READY_DEADLINE:.0f} s (last answer {last})"
            return s
        await asyncio.sleep(POLL)


async def stop_lab(client: httpx.AsyncClient, system: System, user: str) -> str:
    """DELETE the server and wait until the hub lists it no more; returns an error or ''."""
    headers = {"Authorization": f"token {system.token(user)}"}
    api = f"{system.url}/hub/api/users/{user}"
    t0 = time.monotonic()
    try:
        r = await client.delete(f"{api}/server", headers=headers, timeout=STOP_DEADLINE)
        if r.status_code not in (202, 204, 400):  # 400: not running
            return f"DELETE {r.status_code}: {r.text[:200]}"
        while time.monotonic() - t0 < STOP_DEADLINE:
            g = await client.get(api, headers=headers, timeout=10)
            srv = g.json().get("servers", {}).get("") if g.status_code == 200 else None
            if g.status_code == 200 and (
                srv is None or not (srv.get("ready") or srv.get("pending"))
            ):
                return ""
            await asyncio.sleep(0.1)
    except httpx.HTTPError as exc:
        return f"stop failed: {exc!r}"
    return f"still running {STOP_DEADLINE:.0f} s after DELETE"


def phases(system: System, s: Start) -> dict[str, float]:
    """Where one start's time went, from /proc (lab process start) and the lab's log."""
    out: dict[str, float] = {}
    pid = system.main_pid(s.user)
    ticks = start_ticks(pid) if pid else None
    if ticks is not None:
        out["hub: request -> lab process exists"] = ticks / CLK_TCK - s.t_boot
    # "Starting jupyterhub single-user server extension" is logged once the imports are done
    # (the "Extension package X took Ns to import" lines only appear when an import is slow)
    first = running = None
    for line in system.lab_log(s.user).splitlines():
        m = LAB_LINE.match(line)
        if not m:
            continue
        ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if ts < s.t_wall - 0.01:
            continue
        if first is None and "Starting jupyterhub single-user server extension" in m.group(2):
            first = ts
        if first is not None and "is running at" in m.group(2):
            running = ts
            break
    if first is not None and ticks is not None:
        out["lab: python start + imports"] = (
            first - s.t_wall - out["hub: request -> lab process exists"]
        )
    if first is not None and running is not None:
        out["lab: extensions load -> listening"] = running - first
    if running is not None and s.latency is not None:
        out["hub: listening -> route -> 200"] = s.t_wall + s.latency - running
    return out


# -- stock JupyterHub ---------------------------------------------------------------------------
STOCK_CONFIG = """\
# Written by bench/spawn.py: stock JupyterHub, SimpleLocalProcessSpawner, its own CHP.
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.ConfigurableHTTPProxy.pid_file = {root!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {root!r} + "/cookie_secret"
c.JupyterHub.pid_file = {root!r} + "/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = {root!r} + "/home/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]  # SimpleLocalProcessSpawner runs labs as the hub's user: root
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = 90
c.Spawner.start_timeout = 120
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "bench",
    "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
    "services": ["bench"],
}}]
"""


class StockHub:
    name = "stock"

    def __init__(self, root: Path, env_path: Path) -> None:
        self.root = root
        self.env_path = env_path
        port, api_port, hub_port = free_ports(3)
        self.url = f"http://127.0.0.1:{port}"
        self.admin_token = secrets.token_hex(32)
        (root / "home").mkdir(parents=True)
        self.config = root / "jupyterhub_config.py"
        self.config.write_text(
            STOCK_CONFIG.format(
                port=port,
                hub_port=hub_port,
                api_port=api_port,
                chp=str(CHP),
                proxy_token=secrets.token_hex(32),
                root=str(root),
                token=self.admin_token,
                singleuser=str(env_path / "bin" / "jupyterhub-singleuser"),
            )
        )
        self.log_path = root / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def up(self) -> None:
        env = {
            "PATH": f"{self.env_path / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(self.root),
            "PYTHONUNBUFFERED": "1",
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(self.config)],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        REAPER.add(self.proc.pid)
        deadline = time.monotonic() + HUB_DEADLINE
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stock hub exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/hub/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"stock hub not up after {HUB_DEADLINE:.0f} s ({self.log_path})")
            time.sleep(0.1)
        REAPER.add(*descendants(self.proc.pid))  # the proxy

    def add_users(self, names: list[str]) -> None:
        r = httpx.post(
            f"{self.url}/hub/api/users",
            json={"usernames": names},
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=30,
        )
        r.raise_for_status()

    def token(self, user: str) -> str:
        return self.admin_token

    def main_pid(self, user: str) -> int | None:
        r = httpx.get(
            f"{self.url}/hub/api/users/{user}",
            timeout=10,
            headers={"Authorization": f"token {self.admin_token}"},
        )
        srv = r.json().get("servers", {}).get("") or {}
        pid = (srv.get("state") or {}).get("pid")
        return int(pid) if pid else None

    def lab_pids(self, user: str) -> list[int]:
        pid = self.main_pid(user)
        pids = descendants(pid) if pid else []
        REAPER.add(*pids)
        return pids

    def lab_log(self, user: str) -> str:
        return self.log_path.read_text(errors="replace")  # labs write into the hub's output

    def infra_pids(self) -> list[int]:
        pids = [self.proc.pid] if self.proc else []
        with contextlib.suppress(OSError, ValueError):
            pids.append(int((self.root / "proxy.pid").read_text()))
        return pids

    def throttled(self, user: str) -> float | None:
        return None  # no cgroup

    def down(self) -> None:
        """SIGTERM the hub (it stops its labs and its proxy), then kill whatever is left."""
        if self.proc is not None:
            REAPER.add(*descendants(self.proc.pid))
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            REAPER.add(int((self.root / "proxy.pid").read_text()))
        REAPER.kill_all()


# -- sciplat ------------------------------------------------------------------------------------
class Sciplat:
    name = "sciplat"

    def __init__(self, platform: Platform) -> None:
        self.p = platform
        self.url = platform.url
        self.tokens: dict[str, str] = {}
        self.users: list[str] = []
        parent = f"sciplat-test-{platform.run_id}"
        unified = Path("/sys/fs/cgroup/cgroup.controllers").exists()
        self.cgroup_parents = (
            [Path("/sys/fs/cgroup") / parent]
            if unified
            else [Path("/sys/fs/cgroup") / c / parent for c in ("memory", "cpu", "cpuacct", "pids")]
        )

    def add_users(self, names: list[str]) -> list[str]:
        full = []
        for n in names:
            user = self.p.add_user(n)
            self.users.append(user)
            self.tokens[user] = self.p.token(user)
            full.append(user)
        return full

    def token(self, user: str) -> str:
        return self.tokens[user]

    def lab_pids(self, user: str) -> list[int]:
        pids: set[int] = set()
        for parent in self.cgroup_parents:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in (parent / user / "cgroup.procs").read_text().split())
        REAPER.add(*pids)
        return sorted(pids)

    def main_pid(self, user: str) -> int | None:
        """The oldest process of the lab's cgroup: the server (launched or pre-forked); its
        kernels and terminals come later."""
        labs = self.lab_pids(user)
        return min(labs, key=lambda p: start_ticks(p) or 0) if labs else None

    def how(self, user: str) -> str:
        """Whether the lab was forked from the environment's parent (whose command line a
        forked process keeps) or started by the launcher."""
        pid = self.main_pid(user)
        return "pre-forked" if pid and "prefork_server" in cmdline(pid) else "launcher"

    def lab_log(self, user: str) -> str:
        with contextlib.suppress(OSError):
            return self.p.data_dir.joinpath("logs", "labs", f"{user}.log").read_text(
                errors="replace"
            )
        return ""

    def infra_pids(self) -> list[int]:
        pids = []
        for name in ("hub", "proxy"):
            with contextlib.suppress(OSError, ValueError):
                pids.append(self.p.pid(name))
        return pids

    def throttled(self, user: str) -> float | None:
        """Seconds the lab's cgroup was held back by its CPU limit."""
        for parent in self.cgroup_parents:
            if parent.parent.name not in ("cpu", "cgroup"):
                continue
            with contextlib.suppress(OSError, ValueError):
                for line in (parent / user / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "throttled_time":  # cgroup v1: ns
                        return int(value) / 1e9
                    if key == "throttled_usec":  # cgroup v2
                        return int(value) / 1e6
        return None

    def cleanup(self) -> None:
        """After the harness's `sciplat down`: leftovers in our cgroups, our accounts, our
        (empty) cgroup parents."""
        for user in self.users:
            self.lab_pids(user)
        REAPER.kill_all()
        import grp  # noqa: PLC0415
        import pwd  # noqa: PLC0415

        for user in self.users:
            with contextlib.suppress(KeyError):
                if pwd.getpwnam(user).pw_gecos == "sciplat user":
                    subprocess.run(["userdel", user], capture_output=True, check=False)
            with contextlib.suppress(KeyError):
                grp.getgrnam(user)
                subprocess.run(["groupdel", user], capture_output=True, check=False)
        for parent in self.cgroup_parents:
            for d in (*parent.glob("*/"), parent):
                with contextlib.suppress(OSError):
                    d.rmdir()


# -- the measurement ----------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Subject:
    """One system under measurement, its users and its results."""

    system: Any
    solo: str
    crowd: list[str]
    res: dict[str, Any] = field(
        default_factory=lambda: {"single": [], "concurrent": [], "errors": []}
    )


async def single_cycle(
    client: httpx.AsyncClient, sub: Subject, i: int, cycles: int, settle: float
) -> None:
    """Start the solo user's lab, note where the time went, (last cycle) its memory, stop."""
    system, res = sub.system, sub.res
    s = await start_lab(client, system, sub.solo)
    if s.latency is not None:
        s.phases = phases(system, s)
        s.how = system.how(sub.solo) if hasattr(system, "how") else ""
    result = f"{s.latency:.2f} s" if s.latency is not None else s.error
    log(f"{system.name}: single start {i + 1}/{cycles}: {result}")
    if i == cycles - 1 and s.latency is not None:
        await asyncio.sleep(settle)
        pids = system.lab_pids(sub.solo)
        rss, pss = memory(pids)
        res["single_memory"] = {
            "rss_mb": rss,
            "pss_mb": pss,
            "cpu_s": cpu_seconds(pids),
            "throttled_s": system.throttled(sub.solo),
        }
    res["single"].append(asdict(s))
    err = await stop_lab(client, system, sub.solo)
    if err:
        res["errors"].append(f"stop {sub.solo}: {err}")


async def burst(client: httpx.AsyncClient, sub: Subject, settle: float) -> None:
    """Start every crowd user's lab at once; memory once all idle; stop them all."""
    system, res = sub.system, sub.res
    log(f"{system.name}: {len(sub.crowd)} concurrent starts")
    t0, infra = time.monotonic(), system.infra_pids()
    infra_cpu = cpu_seconds(infra)
    starts = await asyncio.gather(*(start_lab(client, system, u) for u in sub.crowd))
    res["concurrent_wall"] = time.monotonic() - t0
    res["concurrent_infra_cpu"] = cpu_seconds(infra) - infra_cpu
    for s in starts:
        if s.latency is not None and hasattr(system, "how"):
            s.how = system.how(s.user)
        res["concurrent"].append(asdict(s))
        if s.error:
            log(f"{system.name}: {s.user} failed: {s.error}")
    up = [s.user for s in starts if s.latency is not None]
    log(f"{system.name}: {len(up)}/{len(sub.crowd)} labs up; idle {settle:.0f} s, then memory")
    await asyncio.sleep(settle)
    res["concurrent_memory"] = []
    for user in up:
        pids = system.lab_pids(user)
        rss, pss = memory(pids)
        res["concurrent_memory"].append(
            {
                "user": user,
                "pids": len(pids),
                "rss_mb": rss,
                "pss_mb": pss,
                "cpu_s": cpu_seconds(pids),
                "throttled_s": system.throttled(user),
            }
        )
    errs = await asyncio.gather(*(stop_lab(client, system, u) for u in sub.crowd))
    res["errors"] += [f"stop: {e}" for e in errs if e]


async def measure(subjects: list[Subject], cycles: int, settle: float) -> None:
    """Alternate between the systems so that the machine's load drifts on both alike: one
    warm-up start each, then single cycle i of each, then each system's burst."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(limits=limits) as client:
        for sub in subjects:
            log(f"{sub.system.name}: warm-up start (not counted)")
            w = await start_lab(client, sub.system, sub.solo)
            if w.error:
                sub.res["errors"].append(f"warm-up: {w.error}")
            await stop_lab(client, sub.system, sub.solo)
        for i in range(cycles):
            for sub in subjects:
                await asyncio.sleep(1)
                await single_cycle(client, sub, i, cycles, settle)
        for sub in subjects:
            await asyncio.sleep(2)
            await burst(client, sub, settle)


@contextlib.contextmanager
def stock_subject(args: argparse.Namespace, env_path: Path) -> Iterator[Subject]:
    root = Path(tempfile.mkdtemp(prefix="sciplat-bench-stock-"))
    hub = StockHub(root, env_path)
    try:
        log(f"stock: starting JupyterHub + configurable-http-proxy in {root}")
        hub.up()
        solo, crowd = "benchsolo", [f"bench{i}" for i in range(args.users)]
        hub.add_users([solo, *crowd])
        yield Subject(hub, solo, crowd)
    finally:
        hub.down()
        if args.logs:
            dest = Path(args.logs) / "stock"
            dest.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copy(hub.log_path, dest / "hub.log")
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def sciplat_subject(args: argparse.Namespace) -> Iterator[Subject]:
    overrides: dict[str, Any] = {}
    if args.sciplat_cpu:
        size = {"name": "bench", "cpu": args.sciplat_cpu, "memory": "2GiB", "pids": 1024}
        overrides["sizes"] = [{**size, "default": True}]
    log("sciplat: starting the platform (tests/support/platform.py)")
    with running_platform(**overrides) as platform:
        log(f"sciplat: up at {platform.url}, data {platform.data_dir}, run id {platform.run_id}")
        # `sciplat up` starts the default environment's pre-forked parent; a platform serves
        # for hours, so measure once it is ready (as users meet it), not while it imports
        run = platform.data_dir / "run" / "prefork"
        prefork = PreforkServers(run, platform.data_dir / "logs" / "prefork")
        ready = prefork.wait_ready(lab_environment(), 300)
        log("sciplat: pre-forked server " + ("ready" if ready else "NOT ready: plain starts"))
        system = Sciplat(platform)
        try:
            solo, *crowd = system.add_users(["solo", *[f"u{i}" for i in range(args.users)]])
            sub = Subject(system, solo, crowd)
            sub.res["size"] = platform.config["sizes"][0]
            yield sub
        finally:
            if args.logs:
                dest = Path(args.logs) / "sciplat"
                with contextlib.suppress(OSError):
                    shutil.copytree(platform.data_dir / "logs", dest, dirs_exist_ok=True)
                    shutil.copy(platform.root / "up.log", dest / "up.log")
            with contextlib.suppress(Exception):
                platform.down()  # also done by the harness; labs first, then our accounts
            system.cleanup()


def run(args: argparse.Namespace, env_path: Path) -> dict[str, dict[str, Any]]:
    """Bring both systems up, measure them alternately, stop them (also on errors)."""
    with contextlib.ExitStack() as stack:
        subjects = []
        if args.only != "sciplat":
            subjects.append(stack.enter_context(stock_subject(args, env_path)))
        if args.only != "stock":
            subjects.append(stack.enter_context(sciplat_subject(args)))
        asyncio.run(measure(subjects, args.cycles, args.settle))
        return {sub.system.name: sub.res for sub in subjects}


# -- report -------------------------------------------------------------------------------------
def summary(res: dict[str, Any]) -> dict[str, float | None]:
    """The table's rows for one system ("N" is replaced by the number of users)."""
    single = [s["latency"] for s in res["single"] if s["latency"] is not None]
    conc = [s["latency"] for s in res["concurrent"] if s["latency"] is not None]
    alone = res.get("single_memory", {})
    mem = res.get("concurrent_memory", [])
    throttled = [m["throttled_s"] for m in mem if m["throttled_s"] is not None]
    out: dict[str, float | None] = {
        "1 user: p50 (s)": med(single),
        "1 user: p95 (s)": pct(single, 0.95),
        "1 user: failures": float(sum(1 for s in res["single"] if s["latency"] is None)),
        "1 user: pre-forked starts": float(
            sum(s.get("how") == "pre-forked" for s in res["single"])
        ),
    }
    names = dict.fromkeys(k for s in res["single"] for k in s["phases"])
    for name in names:
        vals = [s["phases"][name] for s in res["single"] if name in s["phases"]]
        out[f"1 user phase p50, {name} (s)"] = med(vals)
    out |= {
        "1 user: lab CPU used to start (s)": alone.get("cpu_s"),
        "1 user: lab CPU-throttled by its cgroup (s)": alone.get("throttled_s"),
        "N users: p50 (s)": med(conc),
        "N users: p95 (s)": pct(conc, 0.95),
        "N users: last ready (s)": max(conc) if conc else None,
        "N users: failures": float(sum(1 for s in res["concurrent"] if s["latency"] is None)),
        "N users: pre-forked starts": float(
            sum(s.get("how") == "pre-forked" for s in res["concurrent"])
        ),
        "N users: hub+proxy CPU during the burst (s)": res.get("concurrent_infra_cpu"),
        "N users: lab CPU used to start (s, median)": med([m["cpu_s"] for m in mem]),
        "N users: lab CPU-throttled (s, median)": med(throttled),
        "idle lab alone: RSS (MB)": alone.get("rss_mb"),
        "idle lab alone: PSS (MB)": alone.get("pss_mb"),
        "idle lab of N: RSS (MB, median)": med([m["rss_mb"] for m in mem]),
        "idle lab of N: PSS (MB, median)": med([m["pss_mb"] for m in mem]),
    }
    return out


def table(results: dict[str, dict[str, Any]], users: int) -> str:
    sums = {k: summary(v) for k, v in results.items()}
    keys = list(dict.fromkeys(k for s in sums.values() for k in s))
    rows = [("metric", "stock", "sciplat", "ratio")]
    for k in keys:
        st, sp = sums.get("stock", {}).get(k), sums.get("sciplat", {}).get(k)
        counted = "failures" in k or "starts" in k
        ratio = f"{sp / st:.2f}" if st and sp is not None and not counted else "-"
        fmt = (
            (lambda v: "-" if v is None else f"{v:.0f}")
            if counted or "MB" in k
            else (lambda v: "-" if v is None else f"{v:.2f}")
        )
        rows.append(
            (
                k.replace("N users", f"{users} users").replace("of N", f"of {users}"),
                fmt(st),
                fmt(sp),
                ratio,
            )
        )
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{r[0]:<{w[0]}} | {r[1]:>{w[1]}} | {r[2]:>{w[2]}} | {r[3]:>{w[3]}}" for r in rows]
    lines.insert(1, "-+-".join("-" * x for x in w))
    return "\n".join(lines)


@contextlib.contextmanager
def term_as_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every `finally` stops what it started."""

    def handler(*_: object) -> None:
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=5, help="single-user start/stop cycles")
    ap.add_argument("--users", type=int, default=10, help="users starting at once")
    ap.add_argument("--json", help="also write the raw numbers to this file")
    ap.add_argument(
        "--settle", type=float, default=5.0, help="seconds labs idle before memory is read"
    )
    ap.add_argument("--only", choices=["stock", "sciplat"], help="measure one system only")
    ap.add_argument(
        "--sciplat-cpu",
        type=float,
        default=float(os.cpu_count() or 1),
        help="CPU limit of sciplat's lab size (default: all cores, as stock labs have no "
        "limit; 0 keeps the test harness's 0.5)",
    )
    ap.add_argument("--logs", help="copy hub and lab logs into this directory")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print(
            "bench/spawn.py needs root (sciplat labs run as their users in cgroups)",
            file=sys.stderr,
        )
        return 2
    if not CHP.exists():
        print(f"{CHP} missing: run `make up` once to install it", file=sys.stderr)
        return 2
    env_path = lab_environment()
    results: dict[str, dict[str, Any]] = {}
    started = time.time()
    with term_as_interrupt():
        try:
            results = run(args, env_path)
        except KeyboardInterrupt:
            log("interrupted: everything started was stopped")
            return 130
        finally:
            REAPER.kill_all()
    load = os.getloadavg()
    cpu = results.get("sciplat", {}).get("size", {}).get("cpu")
    intro = (
        f"Lab start latency = POST /hub/api/users/<name>/server -> first 200 from "
        f"GET /user/<name>/api through the proxy. Both systems up at once, measured alternately "
        f"(a warm-up start each, then single cycle i of each, then each one's burst). "
        f"{args.cycles} single-user cycles, {args.users} concurrent users. "
        f"Same lab environment: {env_path}. Stock runs its labs as root (--allow-root, "
        f"SimpleLocalProcessSpawner); sciplat runs them as the users, each in a cgroup "
        f"limited to {cpu} CPU. {os.cpu_count()} CPUs, load average after the run "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; {time.time() - started:.0f} s in all."
    )
    print("\n" + textwrap.fill(intro, 100) + "\n")
    print(table(results, args.users))
    errors = [f"{k}: {e}" for k, v in results.items() for e in v["errors"]]
    errors += [
        f"{k}: {s['user']}: {s['error']}"
        for k, v in results.items()
        for s in v["single"] + v["concurrent"]
        if s["error"]
    ]
    if errors:
        print("\nerrors:\n  " + "\n  ".join(errors))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "env": str(env_path),
                    "cycles": args.cycles,
                    "users": args.users,
                    "loadavg": load,
                    "results": results,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
