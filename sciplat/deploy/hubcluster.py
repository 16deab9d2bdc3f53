"""What the hub does differently in a cluster: the proxy, TAP and jobs are Deployments of their
own.

On one machine the hub, the proxy and TAP all listen on loopback (``sciplat.hub.config``). In
a cluster the hub listens on the pod's address so the proxy (another pod) reaches it, talks to
the proxy's REST API through its Service, and knows TAP and jobs as external services (their
URLs, no command: the chart runs them). The chart passes the addresses in the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sciplat.deploy.incluster import SERVICES
from sciplat.errors import ConfigError
from sciplat.factory import Factory
from sciplat.hub.config import configure_hub

#: variables the chart sets in the hub container
REQUIRED = ("SCIPLAT_HUB_CONNECT_URL", "SCIPLAT_PROXY_API_URL", "CONFIGPROXY_AUTH_TOKEN")


def cluster_services(
    services: list[dict[str, Any]], env: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The hub's managed services with TAP and jobs turned into external ones at
    ``$SCIPLAT_TAP_URL`` / ``$SCIPLAT_JOBS_URL`` (dropped when the chart runs none)."""
    out = [service for service in services if service["name"] not in SERVICES]
    for name in SERVICES:
        url = env.get(f"SCIPLAT_{name.upper()}_URL")
        if url and any(service["name"] == name for service in services):
            out.append({"name": name, "url": url})
    return out


def configure_cluster_hub(c: Any, factory: Factory, env: Mapping[str, str] = os.environ) -> None:
    """Fill JupyterHub's config object ``c`` for a hub running in a pod.

    Raises:
        ConfigError: a variable the chart sets is missing (the container was not started
            by the chart).
    """
    missing = [var for var in REQUIRED if not env.get(var)]
    if missing:
        raise ConfigError(
            f"the hub runs in a cluster but {', '.join(missing)} is not set: start it with "
            "the Helm chart (deploy/helm/sciplat), or use `sciplat up` on one machine"
        )
    if factory.config.services.dask.enabled:
        # the hub would run dask-gateway as its own child in the hub's pod, and launch
        # schedulers there: the chart has no Dask part yet (docs/operator-kubernetes.md)
        raise ConfigError(
            "services.dask.enabled: the Helm chart does not run the Dask service yet; set "
            "config.services.dask.enabled to false in the chart's values"
        )
    configure_hub(c, factory)
    port = factory.config.hub.hub_port
    c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{port}"  # the pod's address, behind a Service
    c.JupyterHub.hub_connect_url = env["SCIPLAT_HUB_CONNECT_URL"]
    c.ConfigurableHTTPProxy.api_url = env["SCIPLAT_PROXY_API_URL"]
    c.ConfigurableHTTPProxy.auth_token = env["CONFIGPROXY_AUTH_TOKEN"]
    c.JupyterHub.services = cluster_services(list(c.JupyterHub.services), env)
    # a hub whose tables are older than its JupyterHub would not start, and a pod that does not
    # start cannot be exec'd into to run `jupyterhub upgrade-db`: upgrade at start (the
    # operator guide says to back the database up before an upgrade)
    c.JupyterHub.upgrade_db = True
