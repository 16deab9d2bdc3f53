"""JupyterHub's Spawner, translated onto the platform's LabService (HTTP-side only:
policy lives in the service, mechanics in the backend)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Any as AnyTrait

from sciplat.errors import SciplatError
from sciplat.hub.errors import to_spawn_exception
from sciplat.hub.options import render_options_form
from sciplat.labs.models import LabOptions, LabState
from sciplat.labs.services.labs import free_port


class SciplatSpawner(Spawner):  # type: ignore[misc]
    """Starts labs through :class:`sciplat.labs.services.labs.LabService`."""

    labs = AnyTrait(help="The LabService; set by the hub configuration.").tag(config=True)
    identity = AnyTrait(help="The IdentityService; set by the hub configuration.").tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lab_state: LabState | None = None
        self._events: list[dict[str, Any]] = []
        self._new_event = asyncio.Event()
        self._done = False
        self._oom_seen = 0
        #: why the last lab ended without being asked to (shown on the next spawn page)
        self.last_stop = ""

    # -- state ---------------------------------------------------------------------------------
    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.last_stop = str(state.get("last_stop") or "")
        lab = state.get("lab")
        self.lab_state = LabState.from_dict(lab) if isinstance(lab, dict) else None
        if self.lab_state is not None:
            self._oom_seen = int(self.lab_state.extra.get("oom_kills", 0))

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        if self.lab_state is not None:
            state["lab"] = self.lab_state.to_dict()
        if self.last_stop:
            state["last_stop"] = self.last_stop
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self.lab_state = None

    # -- progress ------------------------------------------------------------------------------
    def _progress(self, percent: int, message: str) -> None:
        self.log.info("lab %s: %s", self._log_name, message)
        self._events.append({"progress": percent, "message": message})
        self._new_event.set()

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        sent = 0
        while True:
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            if self._done:
                return
            self._new_event.clear()
            await self._new_event.wait()

    # -- the spawn form -----------------------------------------------------------------------
    async def get_options_form(self) -> str:
        await self.labs.refresh_environments()
        user = await asyncio.to_thread(self.identity.get_user, self.user.name)
        return render_options_form(self.labs, user, notice=self.last_stop)

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, Any]:
        """Validate the form here too, so a forged value is refused on the form page."""
        try:
            user = self.identity.get_user(self.user.name)
            options: LabOptions = self.labs.parse_options(user, formdata)
            return options.to_dict()
        except SciplatError as err:
            raise to_spawn_exception(err) from err

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> tuple[str, int]:
        self._events, self._done = [], False
        self.ip, self.port = "127.0.0.1", free_port()
        options = self.user_options or {}
        try:
            await self.labs.refresh_environments()
            user = await asyncio.to_thread(self.identity.get_user, self.user.name)
            user = await asyncio.to_thread(self.identity.sync_host, user)
            others = [
                sp.lab_state
                for sp in self.user.spawners.values()
                if sp is not self and sp.active and getattr(sp, "lab_state", None) is not None
            ]
            self.lab_state = await self.labs.start(
                user, self.name, self.get_env(), self._progress, port=self.port,
                options=options, others=others,
            )  # fmt: skip
        except SciplatError as err:
            self._progress(100, f"Failed: {err.message}")
            raise to_spawn_exception(err) from err
        finally:
            self._done = True
            self._new_event.set()
        self._oom_seen = 0
        self.last_stop = ""
        return (self.lab_state.ip, self.lab_state.port)

    async def poll(self) -> int | None:
        if self.lab_state is None:
            return 0
        status: int | None = await self.labs.poll(self.lab_state)
        self._note_oom()
        if status is not None and not self.last_stop:
            self.last_stop = self.labs.stop_reason(self.lab_state, status)
            self.log.warning("lab %s ended by itself: %s", self._log_name, self.last_stop)
        return status

    def _note_oom(self) -> None:
        """Report processes the kernel killed for exceeding the lab's memory limit."""
        if self.lab_state is None:
            return
        kills = self.labs.usage(self.lab_state).oom_kills
        if kills > self._oom_seen:
            self.log.warning(
                "lab %s: %d process(es) killed for exceeding the memory limit",
                self._log_name,
                kills - self._oom_seen,
            )
            self._oom_seen = kills
            self.lab_state.extra["oom_kills"] = kills

    async def stop(self, now: bool = False) -> None:
        if self.lab_state is not None:
            self._note_oom()
            await self.labs.stop(self.lab_state, now)
