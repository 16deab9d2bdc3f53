"""The ``services.jobs`` section of ``sciplat.yaml`` (hooked into the main Config model)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class JobsConfig(BaseModel):
    """Headless notebook execution at ``/api/jobs``, with a result cache.

    A job runs as its user with the limits of ``size`` (a lab size; default: the platform's
    default size). How many of a user's jobs run at once comes from their ``jobs`` quota;
    ``workers`` caps all users together.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the notebook jobs service.", examples=[True])
    port: int = Field(
        8091, ge=1, le=65535, description="Loopback port the service listens on.", examples=[8091]
    )
    prefix: str = Field(
        "/api/jobs",
        pattern=r"^/[A-Za-z0-9_/.-]*[^/]$",
        description="URL path the proxy routes to the service (no trailing slash).",
        examples=["/api/jobs"],
    )
    required_scope: str = Field(
        "access:services!service=jobs",
        description=(
            "JupyterHub scope a token needs; access:services also counts. Empty: any valid token."
        ),
        examples=["access:services!service=jobs"],
    )
    hub_api_url: str = Field(
        "",
        description="The hub's REST API; default: $JUPYTERHUB_API_URL, else the local hub.",
        examples=["http://127.0.0.1:8081/hub/api"],
    )
    token_cache_seconds: int = Field(
        60, ge=0, description="How long a checked token is trusted without asking the hub again."
    )
    workers: int = Field(4, ge=1, description="Jobs running at once over all users.", examples=[8])
    size: str = Field(
        "",
        description="Lab size whose CPU, memory and process limits a job gets; default: the "
        "platform's default size. A request may name a smaller one.",
        examples=["small"],
    )
    default_timeout: float = Field(
        600, gt=0, description="Seconds a job may run when the request gives no timeout."
    )
    max_timeout: float = Field(
        6 * 3600, gt=0, description="The longest timeout a request may ask for (seconds)."
    )
    cell_timeout: float = Field(
        0, ge=0, description="Seconds one cell may run (0: only the job's timeout applies)."
    )
    max_notebook_bytes: int = Field(
        16 * 1024**2, ge=1024, description="Largest notebook a request may submit."
    )
    results_dir: str = Field(
        ".sciplat/jobs",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="Where in the user's home each job's files go (<results_dir>/<job id>/).",
        examples=[".sciplat/jobs"],
    )
