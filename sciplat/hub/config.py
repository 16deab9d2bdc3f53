"""JupyterHub's configuration, computed from the platform's config document.

The hub is started with ``-f sciplat/hub/jupyterhub_config.py``, which calls
:func:`configure_hub`; nothing here is read from anywhere else.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

from sciplat.factory import SERVICE_PORTS, Factory
from sciplat.hub.admin import PlatformAdminHandler, QuotaApiHandler
from sciplat.hub.authenticators import SciplatLocalAuthenticator
from sciplat.hub.spawner import SciplatSpawner

TEMPLATES = Path(__file__).parent / "templates"
#: Prefix of every managed service's command: the service ends with the hub (service_exec.py).
SERVICE_EXEC = [sys.executable, "-m", "sciplat.hub.service_exec"]


def public_url(factory: Factory) -> str:
    hub = factory.config.hub
    return hub.public_url or f"http://{hub.bind}:{hub.port}"


def proxy_token(factory: Factory) -> str:
    """The proxy's API token, created 0600 on first use and shared by hub and proxy."""
    path = factory.data.proxy_token
    if not path.exists():
        factory.data.ensure()
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def configure_hub(c: Any, factory: Factory) -> None:
    """Fill JupyterHub's config object ``c``."""
    cfg, data = factory.config, factory.data
    data.ensure()
    c.JupyterHub.bind_url = public_url(factory)
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{cfg.hub.hub_port}"
    c.JupyterHub.db_url = cfg.hub.hub_db_url or f"sqlite:///{data.hub_db}"
    c.JupyterHub.cookie_secret_file = str(data.cookie_secret)
    c.JupyterHub.pid_file = str(data.pid_file("hub"))
    # The proxy is sciplat's own child, not the hub's: routes survive a hub restart.
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{cfg.hub.proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = proxy_token(factory)
    # Labs outlive the hub; `sciplat down` stops them on purpose.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.authenticate_prometheus = True
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.JupyterHub.extra_handlers = [
        (r"/sciplat/admin", PlatformAdminHandler, {"factory": factory}),
        (r"/sciplat/api/quotas(?:/([^/]+))?", QuotaApiHandler, {"factory": factory}),
    ]

    c.JupyterHub.spawner_class = SciplatSpawner
    c.SciplatSpawner.labs = factory.labs
    c.SciplatSpawner.identity = factory.identity
    c.Spawner.default_url = "/lab"
    c.Spawner.http_timeout = cfg.hub.spawn_timeout
    c.Spawner.start_timeout = cfg.hub.spawn_timeout + 30
    c.Spawner.poll_interval = 10

    c.Authenticator.allow_all = True  # the identity service decides who may log in
    c.Authenticator.manage_groups = True
    c.Authenticator.admin_users = set(cfg.auth.admin_users)
    if cfg.auth.provider == "local":
        c.JupyterHub.authenticator_class = SciplatLocalAuthenticator
        c.SciplatLocalAuthenticator.identity = factory.identity
    else:
        from sciplat.hub.oauth import configure_oauth  # noqa: PLC0415 - only for OAuth sites

        configure_oauth(c, cfg, factory.identity, public_url(factory))

    services: list[dict[str, Any]] = []
    roles: list[dict[str, Any]] = []
    cull = cfg.culling
    if cull.idle_timeout or cull.max_age:
        services.append(
            {
                "name": "idle-culler",
                "command": [
                    *SERVICE_EXEC, sys.executable, "-m", "jupyterhub_idle_culler",
                    f"--timeout={cull.idle_timeout or 10**9}",
                    f"--cull-every={cull.every}",
                    f"--max-age={cull.max_age}",
                ],
            }
        )  # fmt: skip
        roles.append(
            {
                "name": "idle-culler",
                "scopes": ["list:users", "read:users:activity", "read:servers",
                           "delete:servers"],
                "services": ["idle-culler"],
            }
        )  # fmt: skip
    tap = cfg.services.tap
    if tap.enabled:
        services.append(
            {
                "name": "tap",
                "url": f"http://127.0.0.1:{tap.port}",
                "command": [
                    *SERVICE_EXEC,
                    sys.executable,
                    "-m",
                    "sciplat.tap",
                    "--data-dir",
                    str(data.root),
                ],
                "environment": service_environment(factory),
            }
        )
        roles.append({"name": "user", "scopes": ["self", "access:services!service=tap"]})
        # the lab's own token ($JUPYTERHUB_API_TOKEN) reaches TAP too, so pyvo in a notebook
        # works with no configuration (JupyterHub's default server scopes plus TAP)
        roles.append(
            {
                "name": "server",
                "scopes": [
                    "users:activity!user",
                    "access:servers!server",
                    "access:services!service=tap",
                ],
            }
        )
    _jobs_service(services, roles, factory)
    _dask_service(services, roles, factory)
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


#: what a service must see as the hub did to read the same config (Factory.from_data_dir):
#: another document, the ports of an instance sharing the host, the cgroup parent
PASSED_TO_SERVICES = (
    "SCIPLAT_CONFIG", "SCIPLAT_CGROUP_PARENT", "SCIPLAT_BIND", "SCIPLAT_PORT",
    "SCIPLAT_HUB_PORT", "SCIPLAT_PROXY_API_PORT", *SERVICE_PORTS,
)  # fmt: skip


def service_environment(factory: Factory) -> dict[str, str]:
    """The environment of the platform's own services: its data directory and every
    variable the hub's config was read with (a service on another port than the hub
    expects makes the hub give up on it)."""
    passed = {k: os.environ[k] for k in PASSED_TO_SERVICES if k in os.environ}
    return {"SCIPLAT_DATA_DIR": str(factory.data.root), **passed}


def _grant(roles: list[dict[str, Any]], name: str, base: list[str], scopes: list[str]) -> None:
    """Add ``scopes`` to role ``name`` in ``roles`` (created with ``base`` if missing)."""
    role = next((r for r in roles if r["name"] == name), None)
    if role is None:
        role = {"name": name, "scopes": list(base)}
        roles.append(role)
    role["scopes"] = [*role["scopes"], *(s for s in scopes if s not in role["scopes"])]


def _jobs_service(
    services: list[dict[str, Any]], roles: list[dict[str, Any]], factory: Factory
) -> None:
    """The notebook jobs service (``python -m sciplat.jobs``) and the scopes that reach it."""
    jobs, data = factory.config.services.jobs, factory.data
    if jobs.enabled:
        services.append(
            {
                "name": "jobs",
                "url": f"http://127.0.0.1:{jobs.port}",
                # where the lab client sends requests (the hub tells it; see jobs/client.py)
                "info": {"url": f"http://127.0.0.1:{jobs.port}{jobs.prefix}"},
                "command": [*SERVICE_EXEC, sys.executable, "-m", "sciplat.jobs",
                            "--data-dir", str(data.root)],
                # jobs start their processes in the platform's cgroups, as labs do
                "environment": service_environment(factory),
            }
        )  # fmt: skip
        # users' tokens reach the service, and so does a lab's own token: the lab client
        # finds the service through the hub (read:services) with no configuration
        # (a lab's token holds only what its user holds, so the user gets both too)
        _grant(roles, "user", ["self"],
               ["access:services!service=jobs", "read:services!service=jobs"])  # fmt: skip
        _grant(roles, "server", ["users:activity!user", "access:servers!server"],
               ["access:services!service=jobs", "read:services!service=jobs"])  # fmt: skip


def _dask_service(
    services: list[dict[str, Any]], roles: list[dict[str, Any]], factory: Factory
) -> None:
    """The Dask service (``python -m sciplat.dask``), the scopes that reach it, and the
    client settings labs and jobs get (user_environment passes ``DASK_GATEWAY__*`` on)."""
    from sciplat.dask.client_env import client_environment  # noqa: PLC0415

    dask, data = factory.config.services.dask, factory.data
    if not dask.enabled:
        return
    client = client_environment(dask, public_url(factory))
    os.environ.update(client)  # this hub's labs
    for service in services:
        if service["name"] == "jobs":  # the jobs service's jobs
            service["environment"].update(client)
    services.append(
        {
            "name": "dask",
            "url": f"http://127.0.0.1:{dask.port}",
            "command": [*SERVICE_EXEC, sys.executable, "-m", "sciplat.dask",
                        "--data-dir", str(data.root)],
            # schedulers and workers go into the platform's cgroups, as labs do
            "environment": service_environment(factory),
        }
    )  # fmt: skip
    # users' tokens and labs' own tokens reach the gateway (its JupyterHub check wants
    # access:services!service=dask)
    _grant(roles, "user", ["self"], ["access:services!service=dask"])
    _grant(roles, "server", ["users:activity!user", "access:servers!server"],
           ["access:services!service=dask"])  # fmt: skip
