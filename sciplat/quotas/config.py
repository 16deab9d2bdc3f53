"""The ``quotas`` section of ``sciplat.yaml``."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from sciplat.configbase import OptionalBytes
from sciplat.configbase import Section as _Section
from sciplat.naming import NAME_PATTERN


class QuotaLimits(_Section):
    """Limits for one user, group or the default. Every key is optional; 0 means not allowed."""

    labs: int | None = Field(
        None, ge=0, description="Labs a user may run at the same time.", examples=[2]
    )
    cores: float | None = Field(
        None, ge=0, description="CPU cores in total over a user's running labs.", examples=[4]
    )
    memory: OptionalBytes = Field(
        None, ge=0, description="Memory in total over a user's running labs.", examples=["8GiB"]
    )
    storage: OptionalBytes = Field(
        None, ge=0, description="Size of the user's home directory.", examples=["10GiB"]
    )
    group_storage: OptionalBytes = Field(
        None, ge=0, description="Size of each group directory.", examples=["100GiB"]
    )
    dask_workers: int | None = Field(
        None, ge=0, description="Dask workers in total over a user's clusters.", examples=[8]
    )
    dask_cores: float | None = Field(
        None, ge=0, description="CPU cores in total over a user's Dask workers.", examples=[16]
    )
    dask_memory: OptionalBytes = Field(
        None, ge=0, description="Memory in total over a user's Dask workers.", examples=["32GiB"]
    )
    jobs: int | None = Field(
        None, ge=0, description="Headless notebook runs at the same time.", examples=[4]
    )
    query_rows: int | None = Field(
        None, ge=0, description="Rows one catalogue (TAP) query may return.", examples=[1000000]
    )
    query_seconds: float | None = Field(
        None, ge=0, description="Seconds one catalogue (TAP) query may run.", examples=[600]
    )
    table_storage: OptionalBytes = Field(
        None, ge=0, description="Size of the user's own catalogue tables.", examples=["5GiB"]
    )
    api_rate: int | None = Field(
        None, ge=0, description="API requests per minute, per service.", examples=[600]
    )


class QuotasConfig(_Section):
    """What each user may use. For each key, in order: a user override (``users.<name>``) wins
    over everything; otherwise the most generous of ``default`` and the grants of the user's
    groups (``groups.<name>``) applies, so a group can raise a limit above the default but
    never lower it (a group's key counts only if that group sets it); a key absent everywhere
    is unlimited. Only a user override can set a limit below the default."""

    default: QuotaLimits = Field(
        default_factory=QuotaLimits,
        description="Limits of every user, unless a group or user entry says otherwise.",
        examples=[{"labs": 1, "cores": 2, "memory": "8GiB", "storage": "10GiB"}],
    )
    groups: dict[str, QuotaLimits] = Field(
        default_factory=dict,
        description="Grants per group; members get the most generous grant of their groups.",
        examples=[{"astro": {"cores": 8, "storage": "50GiB"}}],
    )
    users: dict[str, QuotaLimits] = Field(
        default_factory=dict,
        description="Overrides per user; they win over the default and every group.",
        examples=[{"alice": {"storage": "200GiB"}}],
    )

    @field_validator("groups", "users")
    @classmethod
    def _valid_names(cls, entries: dict[str, QuotaLimits]) -> dict[str, QuotaLimits]:
        bad = sorted(name for name in entries if not re.match(NAME_PATTERN, name))
        if bad:
            raise ValueError(
                f"not a valid user or group name: {', '.join(bad)} (lower case letters, "
                "digits, - and _, starting with a letter)"
            )
        return entries
