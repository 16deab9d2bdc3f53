"""``sciplat up``: runs configurable-http-proxy and JupyterHub as separate processes.

The proxy is not the hub's child, so routes survive a hub restart; labs run in their own
sessions, so neither Ctrl-C nor a hub crash reaches them. A hub that exits on its own is
restarted (at most five times a minute). ``sciplat down`` ends the supervisor, the proxy,
the hub, and then every lab.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

import httpx

from sciplat.errors import SciplatError
from sciplat.factory import Factory
from sciplat.hub.config import proxy_token, public_url
from sciplat.labs.builder import server_command
from sciplat.labs.local.storage.processes import start_time

HUB_CONFIG = Path(__file__).parent / "hub" / "jupyterhub_config.py"
CHECKOUT = Path(__file__).resolve().parents[1]


def proxy_command(factory: Factory) -> list[str]:
    """The configured proxy command, else the one ``make`` installed, else one on PATH.

    Raises:
        SciplatError: none found; says how to install it.
    """
    if factory.config.hub.proxy_command:
        return list(factory.config.hub.proxy_command)
    local = CHECKOUT / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return [str(local)]
    found = shutil.which("configurable-http-proxy")
    if found:
        return [found]
    raise SciplatError(
        "configurable-http-proxy not found: run `make up` (it installs it locally) or "
        "`npm install -g configurable-http-proxy`, or set hub.proxy_command"
    )


def pid_alive(path: Path) -> int | None:
    """The pid in ``path`` if that process still runs."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if start_time(pid) is not None else None  # a zombie counts as gone


def _pump(stream: IO[bytes], log: Path, echo: bool) -> None:
    with open(log, "ab") as out:
        for line in iter(stream.readline, b""):
            out.write(line)
            out.flush()
            if echo:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()


class Supervisor:
    """Keeps the proxy and the hub running until told to stop."""

    def __init__(self, factory: Factory, echo_hub_log: bool = True) -> None:
        self.factory = factory
        self.data = factory.data
        self.echo = echo_hub_log
        self.proxy: subprocess.Popen[bytes] | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.reload_requested = False
        self.restarts: deque[float] = deque(maxlen=5)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops in order
            cwd=self.data.root,
        )
        if proc.stdout is None:
            raise RuntimeError(f"{name} has no output pipe")
        threading.Thread(
            target=_pump,
            args=(proc.stdout, self.data.logs / f"{name}.log", self.echo and name == "hub"),
            daemon=True,
        ).start()
        self.data.pid_file(name).write_text(str(proc.pid))
        return proc

    def start_proxy(self) -> None:
        hub = self.factory.config.hub
        if pid_alive(self.data.pid_file("proxy")):
            return  # a proxy from an earlier supervisor still holds the routes: keep it
        self.proxy = self._spawn(
            "proxy",
            [
                *proxy_command(self.factory),
                "--ip", hub.bind, "--port", str(hub.port),
                "--api-ip", "127.0.0.1", "--api-port", str(hub.proxy_api_port),
                "--default-target", f"http://127.0.0.1:{hub.hub_port}",
                "--error-target", f"http://127.0.0.1:{hub.hub_port}/hub/error",
                "--log-level", "warn",
            ],
            {"CONFIGPROXY_AUTH_TOKEN": proxy_token(self.factory)},
        )  # fmt: skip

    def start_hub(self) -> None:
        self.hub = self._spawn(
            "hub",
            [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
            {"SCIPLAT_DATA_DIR": str(self.data.root)},
        )

    def wait_ready(self, timeout: float = 60) -> bool:
        """True once the hub answers through the proxy."""
        url = f"{public_url(self.factory)}/hub/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.hub is not None and self.hub.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code == 200:
                    return True
            time.sleep(0.1)
        return False

    def service_routes(self) -> dict[str, str]:
        """Public path → target of the platform's own services (the hub routes only its
        /services/<name>/ paths; DESIGN.md's URLs are /api/...)."""
        services = self.factory.config.services
        return {
            s.prefix: f"http://127.0.0.1:{s.port}"
            for s in (services.tap, services.jobs, services.dask)
            if s.enabled
        }

    def add_service_routes(self) -> None:
        """Tell the proxy about the services' public paths. Routes without the hub's mark
        survive the hub's own route checks."""
        hub = self.factory.config.hub
        headers = {"Authorization": f"token {proxy_token(self.factory)}"}
        for path, target in self.service_routes().items():
            url = f"http://127.0.0.1:{hub.proxy_api_port}/api/routes{path}"
            for _ in range(50):
                with contextlib.suppress(httpx.HTTPError):
                    r = httpx.post(url, json={"target": target}, headers=headers, timeout=5)
                    if r.status_code in (200, 201):
                        break
                time.sleep(0.1)
            else:
                print(f"sciplat: could not route {path} through the proxy", file=sys.stderr)

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _request_reload(self, *_: object) -> None:
        self.reload_requested = True

    def reload(self) -> None:
        """Apply a changed config: re-read it and restart the hub (and with it the services
        it runs). Labs keep running; the proxy keeps its routes. A document that does not
        validate is refused and the running hub is left alone."""
        self.reload_requested = False
        try:
            factory = Factory.from_data_dir(self.data.root)
        except SciplatError as err:
            print(f"sciplat: reload refused: {err.message}", file=sys.stderr)
            self.data.reload_marker.write_text(f"error: {err.message}\n")
            return
        self.factory = factory
        if self.hub is not None and self.hub.poll() is None:
            self.hub.terminate()
            try:
                self.hub.wait(30)
            except subprocess.TimeoutExpired:
                self.hub.kill()
                self.hub.wait()
        self.start_hub()
        ok = self.wait_ready()
        if ok:
            self.add_service_routes()
        self.data.reload_marker.write_text("ok\n" if ok else "error: the hub did not come up\n")
        print("sciplat: configuration reloaded" if ok else "sciplat: reload failed",
              file=sys.stderr)  # fmt: skip

    def run(self, on_ready: callable | None = None) -> int:  # type: ignore[valid-type]
        """Run in the foreground until SIGINT/SIGTERM; returns the exit code."""
        running = pid_alive(self.data.pid_file("supervisor"))
        if running and running != os.getpid():
            raise SciplatError(
                f"sciplat is already running (pid {running}); stop it with `sciplat down`"
            )
        self.data.pid_file("supervisor").write_text(str(os.getpid()))
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGHUP, self._request_reload)
        try:
            self.start_proxy()
            self.start_hub()
            if not self.wait_ready():
                print("sciplat: the hub did not come up; see", self.data.logs / "hub.log",
                      file=sys.stderr)  # fmt: skip
                return 1
            self.add_service_routes()
            # the default environment's pre-forked parent; others start at their first lab
            default = self.factory.config.default_environment()
            if default is not None and self.factory.config.hub.lab_backend == "local":
                self.factory.prefork.warm(server_command(default))
            if on_ready is not None:
                on_ready()
            while not self.stopping:
                time.sleep(0.2)
                if self.reload_requested:
                    self.reload()
                self._watch()
            return 0
        finally:
            self.shutdown()

    def _watch(self) -> None:
        if self.hub is not None and self.hub.poll() is not None and not self.stopping:
            now = time.monotonic()
            if len(self.restarts) == self.restarts.maxlen and now - self.restarts[0] < 60:
                print("sciplat: the hub keeps exiting; giving up. See",
                      self.data.logs / "hub.log", file=sys.stderr)  # fmt: skip
                self.stopping = True
                return
            self.restarts.append(now)
            print(f"sciplat: the hub exited ({self.hub.returncode}); restarting it",
                  file=sys.stderr)  # fmt: skip
            self.start_hub()
        if self.proxy is not None and self.proxy.poll() is not None and not self.stopping:
            print("sciplat: the proxy exited; restarting it", file=sys.stderr)
            self.start_proxy()
            self.add_service_routes()

    def shutdown(self) -> None:
        """Stop hub, proxy and pre-forked parents (labs keep running)."""
        self.factory.prefork.stop_all()
        for name, proc in (("hub", self.hub), ("proxy", self.proxy)):
            if proc is None:
                stop_process(self.data.pid_file(name))  # adopted from an earlier supervisor
            elif proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            with contextlib.suppress(FileNotFoundError):
                self.data.pid_file(name).unlink()
        stop_dask(self.factory)
        with contextlib.suppress(FileNotFoundError):
            self.data.pid_file("supervisor").unlink()


def stop_dask(factory: Factory) -> None:
    """End every Dask scheduler and worker: the Dask service leaves them running when it
    stops (a hub restart restarts it and it adopts them), the platform's stop ends them."""
    from sciplat.dask.storage.shutdown import stop_all  # noqa: PLC0415
    from sciplat.dask.wiring import usage_file  # noqa: PLC0415

    stopped = stop_all(factory.data.dask_db, factory.lab_backend)
    usage_file(factory.config).unlink(missing_ok=True)
    if stopped:
        print(f"sciplat: stopped {stopped} Dask process{'es' if stopped > 1 else ''}",
              file=sys.stderr)  # fmt: skip


def stop_process(pid_file: Path, timeout: float = 15) -> bool:
    """SIGTERM the process in ``pid_file`` and wait for it; SIGKILL after ``timeout``."""
    pid = pid_alive(pid_file)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if start_time(pid) is None:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True
