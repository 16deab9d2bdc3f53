"""Starting and stopping labs: choose size and environment, prepare the home, hand the spec
to the backend, wait until the server answers, and turn failures into messages a scientist
can act on. The same for every backend."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx

from sciplat.config import Config, EnvironmentConfig, SizeConfig
from sciplat.errors import InvalidOptionError, LabError
from sciplat.identity.models import User
from sciplat.labs.backend import LabBackend, Progress
from sciplat.labs.builder import build_spec, server_command
from sciplat.labs.menu import EnvironmentMenu, environment_menu, sizes_within
from sciplat.labs.models import LabOptions, LabState, LabUsage
from sciplat.paths import DataDir
from sciplat.quotas.errors import StorageLimitError
from sciplat.quotas.models import LabUse
from sciplat.quotas.services.quotas import QuotaService
from sciplat.quotas.services.usage import lab_use
from sciplat.shared import Shared
from sciplat.volumes.service import VolumeService
from sciplat.volumes.storage_limits import StorageLimits
from sciplat.volumes.tutorials import TutorialsError, TutorialService

log = logging.getLogger(__name__)

#: Readiness probes: every 20 ms for the first READY_FAST_SECONDS (a pre-forked lab binds its
#: port within a fraction of a second, and probing a closed loopback port costs microseconds),
#: then growing by half up to the maximum, so slow starts cost the hub little CPU. Once the
#: port listens, one request waits for the server's answer: no back-off delays a ready lab.
READY_POLL_SECONDS = 0.02
READY_FAST_SECONDS = 2.0
READY_POLL_MAX_SECONDS = 0.25
#: The form's radio value meaning "the environment chosen in the drop-down".
DROPDOWN = "__dropdown__"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EnvironmentCatalog(Protocol):
    """Where the menu's environments come from: the configuration and the disk
    (:class:`~sciplat.labs.environments.service.EnvironmentService`), or a registry's image
    tags (:class:`~sciplat.labs.kubernetes.images.ImageCatalog`)."""

    @property
    def environments(self) -> list[EnvironmentConfig]: ...

    def available(self, environment: EnvironmentConfig) -> bool: ...

    async def update(self) -> bool: ...


class LabService(Shared):
    """Policy for labs; the backend does the mechanics."""

    def __init__(
        self,
        config: Config,
        backend: LabBackend,
        volumes: VolumeService,
        environments: EnvironmentCatalog,
        data: DataDir,
        isolate: bool,
        quotas: QuotaService,
        storage_limits: StorageLimits,
        tutorials: TutorialService,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.backend = backend
        self.volumes = volumes
        self.environments = environments
        self.data = data
        self.isolate = isolate
        self.quotas = quotas
        self.storage_limits = storage_limits
        self.tutorials = tutorials
        self.clock = clock
        self._environments_read: float | None = None

    def size(self, name: str | None) -> SizeConfig:
        """The size called ``name`` (default if None).

        Raises:
            LabError: no such size.
        """
        if not name:
            return self.config.default_size()
        for s in self.config.sizes:
            if s.name == name:
                return s
        raise LabError(
            f"There is no lab size {name!r}; choose one of "
            f"{', '.join(s.name for s in self.config.sizes)}."
        )

    def environment(self, name: str | None) -> EnvironmentConfig:
        """The environment called ``name`` (recommended if None), checked to exist on disk.

        Raises:
            LabError: unknown, or missing from disk.
        """
        listed = self.environments.environments
        if name:
            env = next((e for e in listed if e.name == name), None)
        else:  # the recommended one, else the first
            env = next((e for e in listed if e.recommended), next(iter(listed), None))
        if env is None:
            known = ", ".join(e.name for e in listed) or "none configured"
            raise LabError(f"There is no environment {name!r} (available: {known}).")
        if not self.environments.available(env):
            if not self.backend.host_storage:
                raise LabError(
                    f"The environment {env.display_name or env.name!r} is no longer in the "
                    "image registry. Pick another environment from the menu."
                )
            raise LabError(
                f"The environment {env.display_name or env.name!r} is not installed "
                f"({server_command(env)[0]} is missing). Pick another environment, or ask an "
                f"administrator to run `sciplat env build {env.name}`."
            )
        return env

    # -- the spawn menu ---------------------------------------------------------------------
    def menu(self) -> EnvironmentMenu:
        return environment_menu(self.environments.environments, self.environments.available)

    async def refresh_environments(self) -> None:
        """Read the environments' source again (a registry's tags on Kubernetes) when the last
        good read is older than ``kubernetes.image.refresh_seconds``; a failed read keeps the
        last menu and is tried again next time."""
        now = self.clock()
        last = self._environments_read
        if last is not None and now - last < self.config.kubernetes.image.refresh_seconds:
            return
        if await self.environments.update():
            self._environments_read = now

    def sizes_for(self, user: User) -> list[SizeConfig]:
        """The sizes ``user`` may choose: those within their ``cores`` and ``memory`` quota."""
        quota = self.quotas.effective(user)
        cores, memory = quota["cores"].value, quota["memory"].value
        return sizes_within(
            self.config.sizes,
            None if cores is None else float(cores),
            None if memory is None else int(memory),
        )

    def parse_options(self, user: User, form: dict[str, list[str]]) -> LabOptions:
        """Validate what the spawn form (or an API client) sent; the one place that decides
        which environment, size and flags a user may ask for.

        Raises:
            InvalidOptionError: an unknown, unavailable or forbidden choice; nothing starts.
        """

        def one(key: str) -> str:
            values = form.get(key) or [""]
            return str(values[0]).strip()

        env_name = one("environment")
        if env_name == DROPDOWN:
            env_name = one("environment_dropdown")
        menu = self.menu()
        env_name = env_name or menu.default or ""
        if env_name not in menu.offered():
            known = ", ".join(sorted(menu.offered())) or "none is installed"
            raise InvalidOptionError(
                f"There is no environment {env_name[:64]!r} you can start (available: {known})."
            )
        sizes = self.sizes_for(user)
        size_name = one("size") or (self.config.default_size().name if sizes else "")
        if size_name not in {s.name for s in sizes}:
            allowed = ", ".join(s.name for s in sizes) or "none"
            raise InvalidOptionError(
                f"The lab size {size_name[:64]!r} is not one you can use (yours: {allowed}); "
                "ask an administrator if you need a larger one."
            )
        reset = one("reset").lower()
        if reset not in ("", "0", "false", "off", "1", "on", "true"):
            raise InvalidOptionError("reset must be on or off")
        return LabOptions(env_name, size_name, reset in ("1", "on", "true"))

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(
        self,
        user: User,
        server: str,
        hub_env: dict[str, str],
        progress: Progress,
        port: int,
        options: dict[str, Any] | None = None,
        others: Sequence[LabState] = (),
    ) -> LabState:
        """Start a lab and return once it answers HTTP.

        Raises:
            InvalidOptionError: the options are not allowed (checked again here, so an API
                client cannot skip the form's check).
            QuotaExceededError: ``others`` (the user's running labs) plus this one would
                break the user's labs, cores or memory quota.
            LabError: with the reason and the tail of the lab's log.
        """
        opts = self.parse_options(user, {k: [str(v)] for k, v in (options or {}).items()})
        size = self.size(opts.size)
        environment = self.environment(opts.environment)
        self.quotas.check_lab_start(
            user, [lab_use(o.size, self.config) for o in others], LabUse(size.cpu, size.memory)
        )
        progress(10, f"Identity: {user.name} (uid {user.uid}, groups "
                     f"{', '.join(user.group_names) or 'none'})")  # fmt: skip
        if self.backend.host_storage:
            home = await self._prepare_home(user, opts, progress)
        else:
            home = self.volumes.home(user)
            if opts.reset:
                progress(25, "Reset: not available for labs on Kubernetes yet; your settings "
                             "are unchanged")  # fmt: skip
        progress(30, f"Environment: {environment.display_name or environment.name}")
        spec = build_spec(
            user=user,
            server=server,
            home=home,
            environment=environment,
            size=size,
            hub_env=hub_env,
            ip="127.0.0.1",
            port=port,
            log_path=self.data.lab_log(user.name, server),
            isolate=self.isolate,
        )
        spec.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.log_path.write_text("")
        state = await self.backend.start(spec, progress)
        prefix = hub_env.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        try:
            await self.wait_ready(state, prefix)
        except LabError:
            await self.backend.stop(state, now=True)
            raise
        progress(90, "Server answering")
        return state

    async def wait_ready(self, state: LabState, prefix: str) -> None:
        """Probe the lab until its API answers, it dies, or the timeout passes. A bare TCP
        connect (cheap) is tried until the port listens, then the HTTP API.

        Raises:
            LabError: it exited (with its log tail) or never answered.
        """
        url = f"http://{state.ip}:{state.port}{prefix}api"
        begun = self.clock()
        deadline = begun + self.config.hub.spawn_timeout
        interval = READY_POLL_SECONDS
        listening = False
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                status = await self.backend.poll(state)
                if status is not None:
                    tail = self.backend.log_tail(state)
                    raise LabError(
                        f"Your lab stopped while starting (exit status {status}). " + _advice(tail),
                        log_tail=tail,
                    )
                listening = listening or await _port_open(state.ip, state.port)
                if listening:
                    try:
                        if (await client.get(url)).status_code < 500:
                            return
                    except httpx.TransportError:
                        pass
                if self.clock() > deadline:
                    raise LabError(
                        f"Your lab did not answer within {self.config.hub.spawn_timeout} s. "
                        "Try again; if it keeps happening, start with a smaller size or ask an "
                        "administrator.",
                        log_tail=self.backend.log_tail(state),
                    )
                await asyncio.sleep(interval)
                if self.clock() - begun > READY_FAST_SECONDS:
                    interval = min(interval * 1.5, READY_POLL_MAX_SECONDS)

    async def _prepare_home(self, user: User, opts: LabOptions, progress: Progress) -> Path:
        """On the host: storage limits of the home and the group directories, the home and
        its links, tutorials, and "reset my environment"; returns the home."""
        storage = await asyncio.to_thread(self.storage_limits.apply, user)
        if storage.note:
            progress(15, storage.note)
        not_offered = await self._group_storage(user, progress)
        home = await asyncio.to_thread(self.volumes.provision, user, not_offered)
        progress(20, f"Home directory {home} ready")
        warning = await asyncio.to_thread(self.storage_limits.warning, user)
        if warning:
            progress(20, warning)
        await self._tutorials(user, home, progress)
        if opts.reset:
            moved = await asyncio.to_thread(self.volumes.reset_user_env, user)
            progress(25, f"Reset: your settings were moved to {moved}" if moved
                     else "Reset: there were no settings to move")  # fmt: skip
        return home

    async def _group_storage(self, user: User, progress: Progress) -> frozenset[str]:
        """Apply the ``group_storage`` limit of each of the user's group directories; returns
        the groups whose directory is not offered (their quota is 0)."""
        hidden = set()
        for group in user.groups:
            try:
                status = await asyncio.to_thread(self.storage_limits.apply_group, group)
            except StorageLimitError as err:
                # a group's limit that cannot change now must not keep members out of labs:
                # the directory stays as it was, and the member is told why
                log.warning("group directory of %s: %s", group.name, err.message)
                progress(15, f"The group directory of {group.name} keeps its current size "
                             f"limit: {err.message}")  # fmt: skip
                continue
            if not status.offered:
                hidden.add(group.name)
            if status.note:
                progress(15, status.note)
            warning = await asyncio.to_thread(self.storage_limits.group_warning, group)
            if warning and status.offered:
                progress(20, warning)
        return frozenset(hidden)

    async def _tutorials(self, user: User, home: Path, progress: Progress) -> None:
        """Refresh the shared read-only copy of the tutorials and link it into the home. A
        failure is reported and the lab starts anyway: tutorials are a convenience."""
        try:
            version = await asyncio.to_thread(self.tutorials.refresh)
            if version is None:
                return
            owner = (user.uid, user.gid) if self.isolate else (None, None)
            await asyncio.to_thread(self.tutorials.link_into, home, *owner)
        except TutorialsError as err:
            log.warning("tutorials for %s: %s", user.name, err.message)
            progress(22, f"Tutorials are not available right now: {err.message}")
            return
        progress(22, f"Tutorials ({version.name}) are in ~/{self.tutorials.config.link}, "
                     "read-only: save your own copies elsewhere in your home")  # fmt: skip

    def stop_reason(self, state: LabState, status: int) -> str:
        """What to tell a user whose lab ended without being asked to."""
        size = next((s for s in self.config.sizes if s.name == state.size), None)
        if self.backend.usage(state).oom_kills:
            limit = f" ({size.memory / 2**30:.1f} GiB for size {size.name})" if size else ""
            return (
                f"Your last lab was stopped because it used more memory than its limit{limit}. "
                "Pick a larger size, or load less data at once."
            )
        return (
            f"Your last lab stopped unexpectedly (exit status {status}). Your files are safe; "
            "if it keeps happening, start with 'reset my environment' or ask an administrator."
        )

    async def poll(self, state: LabState) -> int | None:
        return await self.backend.poll(state)

    async def stop(self, state: LabState, now: bool = False) -> None:
        await self.backend.stop(state, now)

    def usage(self, state: LabState) -> LabUsage:
        return self.backend.usage(state)


async def _port_open(ip: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(ip, port)
    except OSError:
        return False
    writer.close()
    return True


def _advice(tail: str) -> str:
    """What the user can do, judged from the lab's log."""
    low = tail.lower()
    if "no space left" in low or "disk quota exceeded" in low:
        return "Your home is full: delete files (or ask an administrator for more space)."
    if "memoryerror" in low or "killed" in low:
        return "It ran out of memory: pick a larger size."
    if "importerror" in low or "modulenotfounderror" in low:
        return (
            "A package failed to import: if you installed packages with `pip install --user`, "
            "start with 'reset my environment'; otherwise pick another environment and tell an "
            "administrator. The last lines of the lab's log are shown below."
        )
    return (
        "If you changed ~/.jupyter or installed packages with `pip install --user`, those can "
        "break the server: start with 'reset my environment' or ask an administrator. "
        "The last lines of the lab's log are shown below."
    )
