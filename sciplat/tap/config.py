"""The ``services.tap`` section of ``sciplat.yaml`` (hooked into the main Config model)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TapExample(BaseModel):
    """A query offered on ``/examples`` (DALI examples: TOPCAT and other clients list them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1, description="Short title.", examples=["Stars near the Pleiades"]
    )
    query: str = Field(
        min_length=1,
        description="The ADQL query.",
        examples=["SELECT TOP 10 * FROM hipparcos.main ORDER BY hpmag"],
    )
    description: str = Field("", description="What it shows, in a sentence or two.")


class TapConfig(BaseModel):
    """The TAP 1.1 / ADQL 2.1 catalogue service at ``/api/tap``.

    ``public_schemas`` and ``anonymous`` combine: without a token a caller reads only the public
    schemas, and only when ``anonymous`` is on; any valid token with ``required_scope`` reads
    every schema.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Run the TAP service.", examples=[True])
    port: int = Field(
        8090, ge=1, le=65535, description="Loopback port the service listens on.", examples=[8090]
    )
    prefix: str = Field(
        "/api/tap",
        pattern=r"^/[A-Za-z0-9_/.-]*[^/]$",
        description="URL path the proxy routes to the service (no trailing slash).",
        examples=["/api/tap"],
    )
    backend: str = Field(
        "duckdb",
        pattern="^(duckdb|postgres)$",
        description=(
            "Catalogue backend: duckdb (embedded, files under data_dir) or postgres (PostgreSQL "
            "with pgSphere at dsn)."
        ),
        examples=["postgres"],
    )
    dsn: str = Field(
        "",
        description=(
            "postgres backend: libpq connection string of the role that owns the catalogue "
            "(loads tables, creates TAP_SCHEMA and the query role). Passwords belong in "
            "~/.pgpass or PGPASSFILE, not here."
        ),
        examples=["host=db.example.org dbname=catalogue user=sciplat_owner"],
    )
    query_role: str = Field(
        "sciplat_tap",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description=(
            "postgres backend: the login role queries run as (created if missing): SELECT on "
            "the published schemas only, read-only transactions. Same host and database as dsn."
        ),
        examples=["sciplat_tap"],
    )
    pool_size: int = Field(
        4, ge=1, le=100, description="postgres backend: connections kept for queries."
    )
    data_dir: str = Field(
        "",
        description="Where catalogue files live; default: tap/ in the data directory.",
        examples=["/srv/sciplat/tap"],
    )
    demo_catalogue: bool = Field(
        True,
        description="Load the Hipparcos demo catalogue (hipparcos.main) when none is loaded.",
        examples=[True],
    )
    anonymous: bool = Field(
        True, description="Answer callers without a token (public schemas only).", examples=[False]
    )
    public_schemas: list[str] = Field(
        default_factory=lambda: ["TAP_SCHEMA", "hipparcos"],
        description="Schemas anonymous callers may read (TAP_SCHEMA lists every table anyway).",
        examples=[["TAP_SCHEMA", "hipparcos"]],
    )
    required_scope: str = Field(
        "access:services!service=tap",
        description=(
            "JupyterHub scope a token needs; access:services also counts. Empty: any valid token."
        ),
        examples=["access:services!service=tap"],
    )
    hub_api_url: str = Field(
        "",
        description="The hub's REST API; default: $JUPYTERHUB_API_URL, else the local hub.",
        examples=["http://127.0.0.1:8081/hub/api"],
    )
    token_cache_seconds: int = Field(
        60, ge=0, description="How long a checked token is trusted without asking the hub again."
    )
    default_maxrec: int = Field(
        100_000,
        ge=0,
        description="Rows returned when the request gives no MAXREC.",
        examples=[10000],
    )
    max_maxrec: int = Field(
        10_000_000,
        ge=1,
        description="The largest MAXREC a request may ask for.",
        examples=[1000000],
    )
    sync_timeout: float = Field(
        60.0, gt=0, description="Seconds a synchronous query may run before it is stopped."
    )
    threads: int = Field(2, ge=1, description="Database threads per query.", examples=[4])
    memory_limit: str = Field(
        "2GB",
        pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$",
        description="Database memory limit.",
        examples=["8GB"],
    )
    row_group_size: int = Field(
        122_880,
        ge=2048,
        description=(
            "Rows per stored row group: the unit a cone search skips or reads. Smaller groups "
            "make cones on small catalogues cheaper."
        ),
        examples=[16384],
    )
    max_upload_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest request body (in bytes) that carries uploaded tables (TAP UPLOAD); a larger "
            "one is refused while it is read."
        ),
        examples=[16777216],
    )
    max_upload_rows: int = Field(
        100_000,
        ge=1,
        description="Most rows all uploaded tables of one query may have together.",
        examples=[100000],
    )
    async_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="Asynchronous (UWS) jobs that run at the same time; the others queue.",
        examples=[2],
    )
    async_default_seconds: float = Field(
        600.0,
        gt=0,
        description=(
            "An async job's executionduration when it asks for none: after this many seconds "
            "the query is stopped in the database and the job goes to ERROR."
        ),
        examples=[600],
    )
    async_max_seconds: float = Field(
        3600.0,
        gt=0,
        description="The longest executionduration a job may ask for (a caller's query_seconds "
        "quota shortens it further).",
        examples=[7200],
    )
    job_retention_days: float = Field(
        7.0,
        gt=0,
        description=(
            "Days after creation when a job and its result are destroyed (its destruction time); "
            "a job may ask for an earlier one, never a later one."
        ),
        examples=[7],
    )
    max_jobs_per_user: int = Field(
        100,
        ge=1,
        description="Jobs one user may keep at once (finished ones count until destroyed).",
        examples=[100],
    )
    mydb_max_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest request body (in bytes) that saves a user table (PUT "
            "/tables/<schema>.<table>); the user's table_storage quota bounds what they keep."
        ),
        examples=[268435456],
    )
    upload_url_networks: tuple[str, ...] = Field(
        ("public",),
        description=(
            "Where UPLOAD=name,http(s)://... may be fetched from: every address the URL's host "
            "resolves to must be in one of these networks (CIDR), or globally routable if "
            "'public' is listed. Loopback (the hub's API), private and link-local addresses "
            "are refused unless listed. Empty: no URL is fetched (only inline uploads)."
        ),
        examples=[["public", "10.20.0.0/16"]],
    )

    @field_validator("upload_url_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Refuse a wrong entry when the document is read, with its line (the service
        parses the entries again in storage/urlfetch.py)."""
        for entry in value:
            if entry.strip().lower() == "public":
                continue
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"'{entry}' is neither 'public' nor a network such as 192.0.2.0/24 or "
                    "2001:db8::/32"
                ) from None
        return value

    upload_url_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest time fetching one uploaded table from a URL may take.",
        examples=[30],
    )
    examples: tuple[TapExample, ...] = Field(
        (),
        description=(
            "Queries offered on /examples besides those made for the loaded catalogues (a "
            "table listing, and a cone search and a declination histogram per sky table)."
        ),
        examples=[[{"name": "Bright stars", "query": "SELECT TOP 10 * FROM hipparcos.main "
                    "ORDER BY hpmag"}]],
    )
