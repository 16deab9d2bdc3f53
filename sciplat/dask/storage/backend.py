"""dask-gateway's local DB backend with sciplat's process launching and per-user quotas.

Schedulers and workers are started by the platform's lab backend (``LabBackend.start``): the
user's UID/GIDs and home, a cgroup with the worker's cores and memory, a private mount
namespace, in the lab environment the cluster asked for. The stock ``LocalBackend`` cannot do
this as root (it chowns certificate paths character by character) and knows no cgroups.

What is needed to stop or re-attach a process (its :class:`LabState`) is checkpointed in the
gateway's database, so a restarted service adopts running clusters.

Quota enforcement (dask-gateway's limits are per cluster only): a user's workers, cores and
memory over ALL their clusters are clamped where workers are created
(:meth:`_check_cluster_scale`), where a scheduler asks for workers (heartbeat, adaptive), and
where a user asks (scale/adapt requests, which also get a message saying why).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dask_gateway_server.backends.base import ClusterConfig, PublicException
from dask_gateway_server.backends.db_base import DBBackendBase
from dask_gateway_server.backends.local import LocalBackend, LocalClusterConfig
from dask_gateway_server.traitlets import Type
from traitlets import Unicode

from sciplat.config import SizeConfig
from sciplat.dask.services.limits import Holding, in_use
from sciplat.errors import SciplatError
from sciplat.jobs.storage.homefiles import create_job_dir, remove_job_dir
from sciplat.labs.builder import build_spec
from sciplat.labs.models import LabSpec, LabState

if TYPE_CHECKING:
    from sciplat.dask.wiring import DaskServices

log = logging.getLogger(__name__)

#: Where in the user's home each cluster's certificate and key go (<WORKDIR>/<cluster>/).
WORKDIR = ".sciplat/dask"
CERT, KEY = "dask.crt", "dask.pem"

#: Loaded by every scheduler and worker (distributed's ``--preload`` takes module text): their
#: HTTP servers (dashboard, /metrics) are served with the cluster's certificate and require
#: a client certificate signed by it, so nobody reaches them on the loopback port without the
#: cluster's key; the gateway's authenticated proxy (dashboard.py) holds it. distributed
#: offers TLS for the dashboard but never asks for a client certificate; this runs before its
#: HTTP server is created (preloads are imported first).
MUTUAL_TLS_PRELOAD = """\
import ssl
import distributed.node as _node

class _MutualTLSServer(_node.HTTPServer):
    def initialize(self, *args, ssl_options=None, **kwargs):
        if isinstance(ssl_options, ssl.SSLContext):
            ssl_options.verify_mode = ssl.CERT_REQUIRED
        super().initialize(*args, ssl_options=ssl_options, **kwargs)

_node.HTTPServer = _MutualTLSServer
"""

#: the message of the scale/adapt request being handled (read by the app's middleware)
scale_message: contextvars.ContextVar[str] = contextvars.ContextVar("scale_message", default="")


class SciplatClusterConfig(LocalClusterConfig):  # type: ignore[misc]
    """A cluster's settings, with the lab environment its processes run in."""

    lab_environment = Unicode("", help="The lab environment of the cluster.", config=True)


class SciplatBackend(LocalBackend):  # type: ignore[misc]
    """Clusters as process trees of their user, started through sciplat's lab backend."""

    cluster_config_class = Type(
        "sciplat.dask.storage.backend.SciplatClusterConfig",
        klass="dask_gateway_server.backends.base.ClusterConfig",
        config=True,
    )

    #: set by the service before the gateway starts (see __main__.py)
    sciplat: DaskServices

    # -- quotas ---------------------------------------------------------------------------

    def _holdings(self, username: str, exclude: str = "") -> list[Holding]:
        """What the user's other active clusters hold (a target not reached yet counts)."""
        out = []
        for c in self.db.list_clusters(username=username):
            if c.name == exclude:
                continue
            out.append(
                Holding(
                    max(c.count, len(c.active_workers())),
                    float(c.config["worker_cores"]),
                    int(c.config["worker_memory"]),
                )
            )
        return out

    def _decide(self, cluster: Any, requested: int) -> tuple[int, str]:
        """The worker count ``cluster`` (a database record) may have, and why not more."""
        decision = self.sciplat.quotas.decide(
            cluster.username,
            requested,
            len(cluster.active_workers()),
            self._holdings(cluster.username, exclude=cluster.name),
            float(cluster.config["worker_cores"]),
            int(cluster.config["worker_memory"]),
        )
        return decision.count, decision.message

    async def start_cluster(self, user: Any, cluster_options: dict[str, Any]) -> str:
        try:
            self.sciplat.identity.get_user(user.name)
        except SciplatError as err:
            raise PublicException(f"{user.name} is not a user of this platform") from err
        forbidden = self.sciplat.quotas.limits(user.name).forbidden()
        if forbidden:
            raise PublicException(
                f"Dask is not allowed for your account: your {forbidden} quota is 0. "
                "Ask the platform's operators for a Dask quota."
            )
        _, config = await self.process_cluster_options(user, cluster_options)
        dask = self._dask_command(config.lab_environment)
        if not os.access(dask, os.X_OK):
            raise PublicException(
                f"the environment {config.lab_environment!r} has no Dask ({dask} is missing); "
                "choose another environment or ask the operators to rebuild it"
            )
        name: str = await super().start_cluster(user, cluster_options)
        return name

    async def forward_message_to_scheduler(self, cluster: Any, msg: dict[str, Any]) -> None:
        record = self.db.get_cluster(cluster.name)
        if record is not None and msg.get("op") == "scale":
            msg["count"], message = self._decide(record, int(msg["count"]))
            scale_message.set(message)
        elif record is not None and msg.get("op") == "adapt" and msg.get("maximum") is not None:
            maximum, message = self._decide(record, int(msg["maximum"]))
            if maximum < msg["maximum"]:
                msg["maximum"], msg["minimum"] = maximum, min(msg.get("minimum") or 0, maximum)
                scale_message.set(message.replace("Scale request of", "Adapt maximum of"))
        await super().forward_message_to_scheduler(cluster, msg)

    async def on_cluster_heartbeat(self, cluster_name: str, msg: dict[str, Any]) -> None:
        # an adaptive scheduler asks for workers in its heartbeat
        record = self.db.get_cluster(cluster_name)
        if record is not None and msg.get("count", 0) > record.count:
            msg["count"], message = self._decide(record, int(msg["count"]))
            if message:
                self.log.info("Cluster %s: %s", cluster_name, message)
        await super().on_cluster_heartbeat(cluster_name, msg)

    async def _check_cluster_scale(self, cluster: Any) -> None:
        # the one place workers are created: the quotas hold here whatever asked for them
        if cluster.count > len(cluster.active_workers()):
            count, message = self._decide(cluster, cluster.count)
            if count < cluster.count:
                self.log.info("Cluster %s: %s", cluster.name, message)
                self.db.update_cluster(cluster, count=count)
        await super()._check_cluster_scale(cluster)

    async def _check_cluster_proxied(self, cluster: Any) -> None:
        # only the scheduler's TLS route: the proxy would serve the dashboard to anyone;
        # the gateway's app serves it to its owner instead (handlers.py)
        if not cluster.added_to_proxies:
            await self.proxy.add_route(
                kind="SNI", sni=cluster.name, target=cluster.scheduler_address
            )
            cluster.added_to_proxies = True

    def usage_by_user(self) -> dict[str, dict[str, float]]:
        """Workers not yet stopped, with their cores and memory, per user."""
        totals: dict[str, list[Holding]] = {}
        for c in self.db.list_clusters():
            totals.setdefault(c.username, []).append(
                Holding(len(c.active_workers()), float(c.config["worker_cores"]),
                        int(c.config["worker_memory"]))
            )  # fmt: skip
        return {
            user: dict(zip(("dask_workers", "dask_cores", "dask_memory"), in_use(h), strict=True))
            for user, h in totals.items()
        }

    # -- processes --------------------------------------------------------------------------

    def get_tls_paths(self, cluster: Any) -> tuple[str, str]:
        workdir = cluster.state["workdir"]
        return os.path.join(workdir, CERT), os.path.join(workdir, KEY)

    def get_env(self, cluster: Any) -> dict[str, str]:
        # nothing from the service's environment (LocalBackend passes PATH etc. on)
        env: dict[str, str] = DBBackendBase.get_env(self, cluster)
        cert, key = self.get_tls_paths(cluster)
        env.update(
            {
                "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT": cert,
                "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY": key,
                "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CA_FILE": cert,
            }
        )
        return env

    def _dask_command(self, environment: str) -> str:
        return str(self.sciplat.environments.get(environment).path / "bin" / "dask")

    def _dask(self, cluster: Any, role: str) -> list[str]:
        dask = self._dask_command(cluster.config["lab_environment"])
        return [dask, role, "--preload", MUTUAL_TLS_PRELOAD]

    def get_scheduler_command(self, cluster: Any) -> list[str]:
        args = DBBackendBase.get_scheduler_command(self, cluster)
        return [*self._dask(cluster, "scheduler"), *args[len(cluster.config["scheduler_cmd"]) :]]

    def get_worker_command(
        self, cluster: Any, worker_name: str, scheduler_address: str | None = None
    ) -> list[str]:
        args = DBBackendBase.get_worker_command(self, cluster, worker_name, scheduler_address)
        return [*self._dask(cluster, "worker"), *args[len(cluster.config["worker_cmd"]) :]]

    def _spec(
        self, cluster: Any, server: str, command: list[str], env: dict[str, str], role: str
    ) -> LabSpec:
        """The process spec of a scheduler or worker: the same launcher as a lab."""
        s = self.sciplat
        user = s.identity.get_user(cluster.username)
        environment = s.environments.get(cluster.config["lab_environment"])
        cores = float(cluster.config[f"{role}_cores"])
        memory = int(cluster.config[f"{role}_memory"])
        size = SizeConfig(name=f"dask-{role}", cpu=cores, memory=memory, pids=s.config.pids)
        spec = build_spec(
            user=user, server=server, home=Path(cluster.state["home"]),
            environment=environment, size=size, hub_env={}, ip="127.0.0.1", port=0,
            log_path=s.data.logs / "dask" / cluster.name / f"{server}.log", isolate=s.isolate,
        )  # fmt: skip
        return dataclasses.replace(spec, command=tuple(command), env={**spec.env, **env})

    async def _launch(self, spec: LabSpec) -> dict[str, Any]:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = await self.sciplat.labs.start(spec, lambda _pct, _msg: None)
        return state.to_dict()

    async def _stop(self, state: dict[str, Any] | None) -> None:
        lab = LabState.from_dict(state) if state else None
        if lab is not None:
            await self.sciplat.labs.stop(lab)

    async def _running(self, state: dict[str, Any] | None) -> bool:
        lab = LabState.from_dict(state) if state else None
        return lab is not None and await self.sciplat.labs.poll(lab) is None

    def setup_working_directory(self, cluster: Any) -> str:
        """``<home>/.sciplat/dask/<cluster>/`` with the cluster's certificate and key, the
        user's own (0700/0600); reachable inside the processes' private mount namespace."""
        s = self.sciplat
        user = s.identity.get_user(cluster.username)
        s.storage_limits.apply(user)
        home = s.volumes.provision(user)
        owner = (user.uid, user.gid) if s.isolate else None
        files = {CERT: cluster.tls_cert, KEY: cluster.tls_key}
        return str(create_job_dir(home, WORKDIR, cluster.name, files, owner))

    def cleanup_working_directory(self, workdir: str) -> None:
        """Remove a cluster's directory without following links the user may have planted
        on the way (each component opened with O_NOFOLLOW)."""
        path = Path(workdir)
        try:
            remove_job_dir(path.parents[len(WORKDIR.split("/"))], WORKDIR, path.name)
        except OSError as exc:
            self.log.warning("Could not remove %s: %s", workdir, exc)

    async def do_start_cluster(self, cluster: Any) -> AsyncIterator[dict[str, Any]]:
        workdir = await asyncio.to_thread(self.setup_working_directory, cluster)
        home = str(Path(workdir).parents[len(WORKDIR.split("/"))])
        state: dict[str, Any] = {"workdir": workdir, "home": home}
        yield state  # checkpointed: cluster.state has home and workdir from here on
        spec = self._spec(
            cluster, f"dask-{cluster.name}", self.get_scheduler_command(cluster),
            self.get_scheduler_env(cluster), "scheduler",
        )  # fmt: skip
        yield {**state, "lab": await self._launch(spec)}

    async def do_stop_cluster(self, cluster: Any) -> None:
        await self._stop(cluster.state.get("lab"))
        workdir = cluster.state.get("workdir")
        if workdir:
            await asyncio.to_thread(self.cleanup_working_directory, workdir)
        shutil.rmtree(self.sciplat.data.logs / "dask" / cluster.name, ignore_errors=True)

    async def do_check_clusters(self, clusters: list[Any]) -> list[bool]:
        return [await self._running(c.state.get("lab")) for c in clusters]

    async def do_start_worker(self, worker: Any) -> AsyncIterator[dict[str, Any]]:
        cluster = worker.cluster
        spec = self._spec(
            cluster, f"dask-{cluster.name}-{worker.name}",
            self.get_worker_command(cluster, worker.name), self.get_worker_env(cluster), "worker",
        )  # fmt: skip
        yield {"lab": await self._launch(spec)}

    async def do_stop_worker(self, worker: Any) -> None:
        await self._stop(worker.state.get("lab"))

    async def do_check_workers(self, workers: list[Any]) -> list[bool]:
        return [await self._running(w.state.get("lab")) for w in workers]

    async def do_setup(self) -> None:
        self._usage_task = asyncio.ensure_future(self._report_usage())

    async def do_cleanup(self) -> None:
        task = getattr(self, "_usage_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _report_usage(self) -> None:
        """Keep the usage file that ``sciplat quota show`` reads current."""
        last = None
        while True:
            usage = self.usage_by_user()
            if usage != last:
                try:
                    write_usage(self.sciplat.usage_file, usage)
                    last = usage
                except OSError as exc:
                    self.log.warning("Could not write %s: %s", self.sciplat.usage_file, exc)
            await asyncio.sleep(1)


def write_usage(path: Path, usage: dict[str, dict[str, float]]) -> None:
    """Replace the usage file atomically (root's, readable by all: counts only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(usage, sort_keys=True))
    tmp.chmod(0o644)
    os.replace(tmp, path)


__all__ = ["ClusterConfig", "SciplatBackend", "SciplatClusterConfig", "write_usage"]
