"""Pure: the ``DASK_GATEWAY__*`` variables with which ``dask_gateway.Gateway()`` finds the
platform's gateway from a lab or a job with no configuration (dask's config reads them)."""

from __future__ import annotations

from sciplat.dask.config import DaskConfig


def client_environment(config: DaskConfig, public_url: str) -> dict[str, str]:
    """The gateway under the platform's public URL, its scheduler proxy, JupyterHub tokens
    (the lab's own ``JUPYTERHUB_API_TOKEN``) for authentication."""
    address = public_url.rstrip("/") + config.prefix
    return {
        "DASK_GATEWAY__ADDRESS": address,
        "DASK_GATEWAY__PUBLIC_ADDRESS": address,
        "DASK_GATEWAY__PROXY_ADDRESS": config.scheduler_address
        or f"gateway://127.0.0.1:{config.scheduler_port}",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }
