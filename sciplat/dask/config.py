"""The ``services.dask`` section of ``sciplat.yaml`` (hooked into the main Config model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sciplat.configbase import Bytes


class DaskConfig(BaseModel):
    """Dask clusters through dask-gateway at ``/api/dask``.

    Schedulers and workers run as their user, each in its own cgroup with the worker's cores
    and memory, in the lab environment the cluster asks for. How many workers, cores and
    memory one user's workers hold at once, over all their clusters, comes from their
    ``dask_workers``, ``dask_cores`` and ``dask_memory`` quotas (0: no Dask).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the Dask service.", examples=[True])
    port: int = Field(
        8093, ge=1, le=65535,
        description="Loopback port of the gateway's HTTP proxy (the proxy routes `prefix` here).",
        examples=[8093],
    )  # fmt: skip
    api_port: int = Field(
        8094, ge=1, le=65535,
        description="Loopback port of the gateway's private API server.", examples=[8094],
    )  # fmt: skip
    scheduler_port: int = Field(
        8095, ge=1, le=65535,
        description="Port of the TLS proxy that clients reach schedulers through.",
        examples=[8786],
    )  # fmt: skip
    scheduler_bind: str = Field(
        "127.0.0.1",
        description="Address the scheduler proxy listens on (0.0.0.0: reachable from other "
        "hosts; TLS with each cluster's own certificate).",
        examples=["127.0.0.1"],
    )
    scheduler_address: str = Field(
        "",
        description="The scheduler proxy as clients name it; default: "
        "gateway://127.0.0.1:<scheduler_port>.",
        examples=["gateway://dask.example.org:8786"],
    )
    prefix: str = Field(
        "/api/dask",
        pattern=r"^/[A-Za-z0-9_/.-]*[^/]$",
        description="URL path the proxy routes to the service (no trailing slash).",
        examples=["/api/dask"],
    )
    hub_api_url: str = Field(
        "",
        description="The hub's REST API; default: $JUPYTERHUB_API_URL, else the local hub.",
        examples=["http://127.0.0.1:8081/hub/api"],
    )
    worker_cores: int = Field(1, ge=1, description="Cores of a worker when none is asked for.")
    max_worker_cores: int = Field(4, ge=1, description="The most cores one worker may ask for.")
    worker_memory: Bytes = Field(
        2 * 1024**3, description="Memory of a worker when none is asked for.", examples=["2GiB"]
    )
    max_worker_memory: Bytes = Field(
        16 * 1024**3, description="The most memory one worker may ask for.", examples=["16GiB"]
    )
    scheduler_cores: int = Field(1, ge=1, description="Cores of each cluster's scheduler.")
    scheduler_memory: Bytes = Field(
        2 * 1024**3, description="Memory of each cluster's scheduler.", examples=["2GiB"]
    )
    pids: int = Field(
        1024, ge=16, description="Processes and threads a scheduler or worker may run."
    )
    idle_timeout: float = Field(
        3600, ge=0,
        description="Seconds a cluster with no client and no work lives on (0: forever).",
    )  # fmt: skip
    start_timeout: float = Field(
        120, gt=0, description="Seconds a scheduler or worker may take to start."
    )

    @model_validator(mode="after")
    def _defaults_within_bounds(self) -> DaskConfig:
        if self.worker_cores > self.max_worker_cores:
            raise ValueError("worker_cores is above max_worker_cores")
        if self.worker_memory > self.max_worker_memory:
            raise ValueError("worker_memory is above max_worker_memory")
        if len({self.port, self.api_port, self.scheduler_port}) != 3:
            raise ValueError("port, api_port and scheduler_port must differ")
        return self
