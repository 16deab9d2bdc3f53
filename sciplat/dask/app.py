"""dask-gateway-server configured from the platform's config document (no dask-gateway
config file): sciplat's backend and token check, the proxy at ``services.dask.prefix``, the
cluster options menu (environment, worker cores and memory, bounded by the config)."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from dask_gateway_server.app import DaskGateway
from dask_gateway_server.auth import JupyterHubAuthenticator
from dask_gateway_server.options import Float, Integer, Options, Select
from traitlets.config import Config as TraitletsConfig

from sciplat.dask.handlers import add_dashboard_routes, quota_messages
from sciplat.dask.storage.backend import SciplatBackend
from sciplat.dask.wiring import DaskServices
from sciplat.errors import ThrottledError
from sciplat.paths import DataDir
from sciplat.quotas.errors import QuotaExceededError


class HubTokenAuthenticator(JupyterHubAuthenticator):  # type: ignore[misc]
    """JupyterHub tokens as every sciplat service takes them (``Bearer``, ``token``), as
    dask-gateway's client sends them (``jupyterhub``), or as ``?token=`` (a dashboard link
    opened in a browser); the dashboard routes are added here (dask-gateway's hook for
    extra routes)."""

    def get_token(self, request: web.Request) -> str | None:
        kind, _, token = request.headers.get("Authorization", "").partition(" ")
        if kind.lower() in ("jupyterhub", "token", "bearer") and token.strip():
            return token.strip()
        return request.query.get("token") or None

    #: the platform's services (set by create_gateway), for the caller's ``api_rate``
    sciplat: DaskServices | None = None

    async def authenticate_and_handle(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Every authenticated request (token or session cookie) counts against the caller's
        ``api_rate``: 429 with Retry-After past it, 403 when it is 0."""

        async def limited(req: web.Request) -> web.StreamResponse:
            if self.sciplat is not None:
                try:
                    self.sciplat.quotas.check_rate(req["user"].name)
                except ThrottledError as err:
                    # dask-gateway answers errors as {"error": reason}, which its client shows
                    raise web.HTTPTooManyRequests(
                        reason=err.message, headers={"Retry-After": str(err.retry_after)}
                    ) from err
                except QuotaExceededError as err:
                    raise web.HTTPForbidden(reason=err.message) from err
            return await handler(req)

        response: web.StreamResponse = await super().authenticate_and_handle(request, limited)
        return response

    async def setup(self, app: web.Application) -> None:
        await super().setup(app)
        add_dashboard_routes(app, self.authenticate_and_handle)


def encrypt_key(data: DataDir) -> str:
    """The key that encrypts clusters' credentials in the gateway's database (created 0600)."""
    path = data.run / "dask.key"
    if not path.exists():
        data.run.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode())
    return path.read_text().strip()


def cluster_options(services: DaskServices) -> Options:
    """The options a cluster request may set, each bounded by ``services.dask``."""
    cfg = services.config
    envs = [e.name for e in services.environments.environments
            if services.environments.available(e)]  # fmt: skip
    default = services.platform.default_environment()
    default_env = default.name if default is not None and default.name in envs else envs[0]

    def handler(options: Any, user: Any) -> dict[str, Any]:
        return {
            "lab_environment": options.environment,
            "worker_cores": options.worker_cores,
            "worker_threads": options.worker_cores,
            "worker_memory": int(options.worker_memory * 2**30),
        }

    return Options(
        Select("environment", envs, default=default_env, label="Environment"),
        Integer("worker_cores", cfg.worker_cores, min=1, max=cfg.max_worker_cores,
                label="Cores per worker"),
        Float("worker_memory", cfg.worker_memory / 2**30, min=0.25,
              max=cfg.max_worker_memory / 2**30, label="Memory per worker (GiB)"),
        handler=handler,
    )  # fmt: skip


def gateway_config(services: DaskServices, hub_api_url: str) -> TraitletsConfig:
    cfg, data = services.config, services.data
    c = TraitletsConfig()
    c.DaskGateway.config_file = str(data.root / "dask_gateway_config.py")  # none: all set here
    c.DaskGateway.address = f"127.0.0.1:{cfg.api_port}"
    c.DaskGateway.backend_class = SciplatBackend
    c.DaskGateway.authenticator_class = HubTokenAuthenticator
    c.Proxy.address = f"127.0.0.1:{cfg.port}"
    c.Proxy.tcp_address = f"{cfg.scheduler_bind}:{cfg.scheduler_port}"
    c.Proxy.prefix = cfg.prefix
    c.HubTokenAuthenticator.jupyterhub_api_url = hub_api_url
    c.HubTokenAuthenticator.jupyterhub_service_name = "dask"
    c.HubTokenAuthenticator.use_service_access_scopes = True
    b = c.SciplatBackend
    # clusters outlive the service (a hub restart restarts it); `sciplat down` stops them
    b.db_url = f"sqlite:///{data.dask_db}"
    b.db_encrypt_keys = [encrypt_key(data)]
    b.stop_clusters_on_shutdown = False
    b.cluster_start_timeout = cfg.start_timeout
    b.worker_start_timeout = cfg.start_timeout
    b.cluster_options = cluster_options(services)
    cc = c.SciplatClusterConfig
    cc.idle_timeout = cfg.idle_timeout
    cc.scheduler_cores = cfg.scheduler_cores
    cc.scheduler_memory = cfg.scheduler_memory
    cc.scheduler_cmd = ["dask", "scheduler"]
    cc.worker_cmd = ["dask", "worker"]
    return c


def create_gateway(services: DaskServices, hub_api_url: str) -> DaskGateway:
    """The gateway, initialized and wired to ``services``; ``.start()`` serves."""
    gateway = DaskGateway(config=gateway_config(services, hub_api_url))
    gateway.initialize([])
    gateway.backend.sciplat = services
    gateway.authenticator.sciplat = services
    gateway.app.middlewares.append(quota_messages)
    return gateway
