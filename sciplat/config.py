"""The configuration document, ``sciplat.yaml``: one pydantic model.

Every section forbids unknown keys, every field has a description and an example, and
:func:`load_config` turns a validation failure into :class:`ConfigError` naming the line,
the field path, the bad value and what is allowed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from sciplat.configbase import Bytes, parse_bytes
from sciplat.configbase import Section as _Section
from sciplat.dask.config import DaskConfig
from sciplat.errors import ConfigError
from sciplat.jobs.config import JobsConfig
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.naming import NAME_PATTERN
from sciplat.quotas.config import QuotaLimits, QuotasConfig
from sciplat.tap.config import TapConfig

# section models that live beside their service, and the size parser, are part of this API
__all__ = ["Config", "ConfigError", "QuotaLimits", "QuotasConfig", "TapConfig", "parse_bytes"]


class LocalAuth(_Section):
    """Local password accounts, hashed with argon2id."""

    max_failures: int = Field(
        5, ge=1, description="Failed logins in a row before the account is locked.", examples=[5]
    )
    lockout_seconds: int = Field(
        60,
        ge=1,
        description="First lockout after max_failures; doubles with every further failure.",
        examples=[60],
    )


class OAuthSettings(_Section):
    """Settings shared by the GitHub, CILogon and generic OIDC providers."""

    client_id: str = Field("", description="OAuth client id.", examples=["sciplat-hub"])
    client_secret: str = Field("", description="OAuth client secret.", examples=["s3cret"])
    callback_url: str = Field(
        "",
        description="Where the provider sends the browser back; default: the hub's own URL.",
        examples=["https://sciplat.example.org/hub/oauth_callback"],
    )
    scopes: list[str] = Field(
        default_factory=list,
        description="Scopes to request; empty means the provider's usual ones.",
        examples=[["openid", "profile", "email", "groups"]],
    )


class OIDCAuth(OAuthSettings):
    """Any OpenID Connect provider (Keycloak, Dex, Google, ...)."""

    issuer: str = Field(
        "",
        description="Issuer URL; its /.well-known/openid-configuration gives the endpoints.",
        examples=["https://login.example.org/realms/science"],
    )
    authorize_url: str = Field("", description="Overrides the discovered authorize endpoint.")
    token_url: str = Field("", description="Overrides the discovered token endpoint.")
    userinfo_url: str = Field("", description="Overrides the discovered userinfo endpoint.")
    username_claim: str = Field(
        "preferred_username", description="Claim that holds the user name.", examples=["sub"]
    )
    groups_claim: str = Field(
        "groups", description="Claim that holds the list of groups.", examples=["groups"]
    )
    uid_claim: str = Field(
        "",
        description="Claim with a numeric POSIX UID (used when identity.uid_source is provider).",
        examples=["uidNumber"],
    )


class GitHubAuth(OAuthSettings):
    """GitHub login; organisations and teams become groups (``org`` and ``org:team``)."""

    allowed_organizations: list[str] = Field(
        default_factory=list, description="Only members of these organisations may log in."
    )


class CILogonAuth(OAuthSettings):
    """CILogon login (research and education identity federations)."""

    username_claim: str = Field("eppn", description="Claim that holds the user name.")
    groups_claim: str = Field("isMemberOf", description="Claim that holds the groups.")


class AuthConfig(_Section):
    """How people log in, and which of them may."""

    provider: Literal["local", "github", "cilogon", "oidc"] = Field(
        "local", description="The login provider.", examples=["oidc"]
    )
    admin_users: list[str] = Field(
        default_factory=list, description="Users who are hub admins.", examples=[["admin"]]
    )
    admin_groups: list[str] = Field(
        default_factory=list, description="Members of these groups are hub admins."
    )
    allowed_groups: list[str] = Field(
        default_factory=list,
        description="If set, only members of these groups (after group_mapping) may log in.",
        examples=[["astro"]],
    )
    group_mapping: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Provider group name to platform group name; provider groups not listed keep "
            "their own name."
        ),
        examples=[{"my-org:astronomers": "astro"}],
    )
    local: LocalAuth = Field(default_factory=LocalAuth)
    oidc: OIDCAuth = Field(default_factory=OIDCAuth)
    github: GitHubAuth = Field(default_factory=GitHubAuth)
    cilogon: CILogonAuth = Field(default_factory=CILogonAuth)


class IdentityConfig(_Section):
    """POSIX identities. Allocations persist in the state database and are never reused."""

    uid_range: tuple[int, int] = Field(
        (200000, 299999),
        description="UIDs handed to users (inclusive).",
        examples=[[200000, 299999]],
    )
    gid_range: tuple[int, int] = Field(
        (300000, 399999),
        description=(
            "GIDs handed to groups (inclusive). Each user also has a private group whose "
            "GID equals the UID, so this range must not overlap uid_range."
        ),
        examples=[[300000, 399999]],
    )
    uid_source: Literal["allocate", "provider"] = Field(
        "allocate",
        description=(
            "allocate: next free id from uid_range. provider: the provider's numeric id "
            "(GitHub user id, OIDC uid_claim) plus provider_uid_offset."
        ),
    )
    provider_uid_offset: int = Field(
        0, ge=0, description="Added to provider ids so they do not clash with local ones."
    )
    host_accounts: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "Create real accounts (useradd/groupadd) so that id, ls -l and whoami show names. "
            "auto: when running as root."
        ),
    )

    @field_validator("uid_range", "gid_range")
    @classmethod
    def _range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if value[0] > value[1]:
            raise ValueError("a range is written [low, high] with low <= high")
        if value[0] < 1000:
            raise ValueError("ranges must start at 1000 or above, clear of system accounts")
        return value

    @model_validator(mode="after")
    def _ranges_disjoint(self) -> IdentityConfig:
        (ulo, uhi), (glo, ghi) = self.uid_range, self.gid_range
        if ulo <= ghi and glo <= uhi:
            raise ValueError(
                f"uid_range {list(self.uid_range)} overlaps gid_range {list(self.gid_range)}: "
                "user private groups use the UID as GID, so the ranges must be disjoint"
            )
        return self


class GroupConfig(_Section):
    """A platform group declared in the config."""

    name: str = Field(pattern=NAME_PATTERN, description="Group name.", examples=["astro"])
    description: str = Field("", description="What the group is for.")
    members: list[str] = Field(
        default_factory=list, description="Users who belong to it (local provider)."
    )


class SizeConfig(_Section):
    """A lab size: CPU and memory a lab may use."""

    name: str = Field(pattern=NAME_PATTERN, description="Size name.", examples=["small"])
    cpu: float = Field(gt=0, le=512, description="CPU cores (CFS quota).", examples=[1])
    memory: Bytes = Field(
        ge=64 * 1024**2, description="Memory limit (at least 64MiB).", examples=["4GiB"]
    )
    pids: int = Field(
        1024, ge=16, description="Most processes and threads the lab may have.", examples=[1024]
    )
    default: bool = Field(False, description="Offered first and used when none is chosen.")


class EnvironmentConfig(_Section):
    """A Python environment labs can run in (the local counterpart of a lab image)."""

    name: str = Field(pattern=NAME_PATTERN, description="Environment name.", examples=["w2026-47"])
    display_name: str = Field("", description="Shown in the menu.", examples=["Weekly 2026_47"])
    kind: Literal["release", "weekly", "daily", "experimental"] = Field(
        "release", description="Release channel."
    )
    created: dt.date | None = Field(None, description="When it was built.")
    path: Path = Field(
        description="Prefix of a venv or conda env with jupyterhub, jupyterlab and ipykernel.",
        examples=["/srv/sciplat/envs/w2026-47"],
    )
    recommended: bool = Field(False, description="The one offered first.")
    requirements: list[str] = Field(
        default_factory=list,
        description="Packages installed by `sciplat env build` besides the lab's own.",
        examples=[["numpy", "astropy"]],
    )


class SharedVolume(_Section):
    """A directory shared by everybody, linked into every home."""

    name: str = Field(pattern=NAME_PATTERN, description="Link name in the home's shared/.")
    path: Path = Field(description="Directory on the host.", examples=["/data/public"])
    read_only: bool = Field(True, description="Whether labs may write to it.")


class VolumesConfig(_Section):
    """Where homes and group directories live. {root}, {user}, {group} are substituted."""

    root: Path = Field(
        Path("/srv/sciplat"),
        description=(
            "Storage root. Every directory above it must be traversable by all users "
            "(checked at start)."
        ),
        examples=["/srv/sciplat"],
    )
    home: str = Field("{root}/home/{user}", description="A user's home (mode 0700).")
    group: str = Field(
        "{root}/groups/{group}", description="A group's shared directory (mode 2770)."
    )
    group_link: str = Field(
        "groups/{group}",
        description="Where a group directory appears inside each member's home (a symlink).",
    )
    shared: list[SharedVolume] = Field(default_factory=list)

    def home_path(self, user: str) -> Path:
        """The home directory of ``user``."""
        return Path(self.home.format(root=self.root, user=user))

    def group_path(self, group: str) -> Path:
        """The shared directory of ``group``."""
        return Path(self.group.format(root=self.root, group=group))


class CullingConfig(_Section):
    """Stopping labs nobody uses."""

    idle_timeout: int = Field(
        3600, ge=0, description="Seconds without activity before a lab is stopped; 0: never."
    )
    max_age: int = Field(0, ge=0, description="Seconds after which any lab is stopped; 0: never.")
    every: int = Field(300, ge=1, description="How often the culler looks, in seconds.")


class HubConfig(_Section):
    """The hub, the proxy and the state database."""

    bind: str = Field("127.0.0.1", description="Address the proxy listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the proxy listens on.")
    hub_port: int = Field(8081, ge=1, le=65535, description="Port of the hub itself (loopback).")
    proxy_api_port: int = Field(8001, ge=1, le=65535, description="Proxy REST API port.")
    public_url: str = Field(
        "", description="URL users reach; default http://BIND:PORT.", examples=["https://sp.org"]
    )
    state_url: str = Field(
        "",
        description=(
            "SQLAlchemy URL of the platform's state database; default: SQLite in the data "
            "directory."
        ),
        examples=["postgresql+psycopg://sciplat@db/sciplat"],
    )
    hub_db_url: str = Field(
        "", description="JupyterHub's own database; default: SQLite in the data directory."
    )
    proxy_command: list[str] = Field(
        default_factory=list,
        description="configurable-http-proxy command; default: the one `make up` installed.",
    )
    spawn_timeout: int = Field(120, ge=5, description="Seconds a lab may take to answer.")
    lab_backend: Literal["local", "kubernetes"] = Field(
        "local",
        description="Where labs run: local processes in cgroups, or pods (section kubernetes).",
        examples=["kubernetes"],
    )


class TutorialsConfig(_Section):
    """Tutorial notebooks: a git repository or a directory, copied read-only into the storage
    root and linked into every home at each lab start. Users copy a notebook elsewhere in their
    home to edit it; the shared copy is refreshed and never holds their changes."""

    source: str = Field(
        "",
        description=(
            "A git URL (https://, git@, ssh://, file://, or ending in .git) or an absolute "
            "directory path; empty: no tutorials."
        ),
        examples=["https://github.com/lsst/tutorial-notebooks.git"],
    )
    ref: str = Field(
        "",
        description="Branch or tag of a git source; empty: the remote's default branch.",
        examples=["main"],
    )
    link: str = Field(
        "tutorials",
        description="Name of the link in each home (a user's own file of that name is kept).",
        examples=["tutorials"],
    )
    refresh_seconds: int = Field(
        300,
        ge=0,
        description="A git source is fetched at most this often (at lab starts).",
        examples=[300],
    )

    @property
    def is_git(self) -> bool:
        """Whether ``source`` names a git repository rather than a directory."""
        prefixes = ("https://", "http://", "git@", "ssh://", "git://", "file://")
        return self.source.startswith(prefixes) or self.source.endswith(".git")

    @model_validator(mode="after")
    def _check(self) -> TutorialsConfig:
        if self.source and not self.is_git and not self.source.startswith("/"):
            raise ValueError(
                f"tutorials.source {self.source!r} is neither a git URL (https://, git@, "
                "file://, ending in .git) nor an absolute directory path"
            )
        if self.source.startswith("-") or self.ref.startswith("-"):
            raise ValueError("tutorials.source and tutorials.ref cannot start with '-'")
        if self.link in ("", ".", "..") or "/" in self.link or "\0" in self.link:
            raise ValueError(f"tutorials.link {self.link!r} must be a plain file name")
        return self


class ServicesConfig(_Section):
    """The platform's own services beside the hub."""

    tap: TapConfig = Field(
        default_factory=TapConfig,
        description="The IVOA TAP service at /api/tap.",
    )
    jobs: JobsConfig = Field(
        default_factory=JobsConfig,
        description="Headless notebook jobs and their result cache at /api/jobs.",
    )
    dask: DaskConfig = Field(
        default_factory=DaskConfig,
        description="Dask clusters (dask-gateway) at /api/dask, within the dask_* quotas.",
    )


class Config(_Section):
    """The whole ``sciplat.yaml`` document."""

    auth: AuthConfig = Field(default_factory=AuthConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    groups: list[GroupConfig] = Field(default_factory=list)
    sizes: list[SizeConfig] = Field(
        default_factory=lambda: [
            SizeConfig(name="small", cpu=1, memory=4 * 1024**3, default=True),
            SizeConfig(name="medium", cpu=2, memory=8 * 1024**3),
        ]
    )
    environments: list[EnvironmentConfig] = Field(default_factory=list)
    volumes: VolumesConfig = Field(default_factory=VolumesConfig)
    tutorials: TutorialsConfig = Field(default_factory=TutorialsConfig)
    culling: CullingConfig = Field(default_factory=CullingConfig)
    hub: HubConfig = Field(default_factory=HubConfig)
    services: ServicesConfig = Field(default_factory=ServicesConfig)
    quotas: QuotasConfig = Field(default_factory=QuotasConfig)
    kubernetes: KubernetesConfig = Field(
        default_factory=KubernetesConfig,
        description="Labs as pods, used when hub.lab_backend is kubernetes.",
    )

    @field_validator("sizes", "environments", "groups")
    @classmethod
    def _unique_names(cls, items: list[Any]) -> list[Any]:
        names = [item.name for item in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"names must be unique, repeated: {', '.join(dupes)}")
        return items

    @field_validator("sizes")
    @classmethod
    def _one_default_size(cls, sizes: list[SizeConfig]) -> list[SizeConfig]:
        if not sizes:
            raise ValueError("at least one size is needed")
        if sum(s.default for s in sizes) > 1:
            raise ValueError("at most one size can be the default")
        return sizes

    @field_validator("environments")
    @classmethod
    def _one_recommended(cls, envs: list[EnvironmentConfig]) -> list[EnvironmentConfig]:
        if sum(e.recommended for e in envs) > 1:
            raise ValueError("at most one environment can be recommended")
        return envs

    def default_size(self) -> SizeConfig:
        """The size used when none is chosen: the one marked default, else the first."""
        return next((s for s in self.sizes if s.default), self.sizes[0])

    def default_environment(self) -> EnvironmentConfig | None:
        """The recommended environment, else the first, else None."""
        return next((e for e in self.environments if e.recommended), None) or next(
            iter(self.environments), None
        )


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]  # the key's line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _short_scalar(value: object) -> bool:
    """Whether an offending value is worth quoting in the error (not a whole section)."""
    if isinstance(value, list | tuple):
        return bool(value) and all(_short_scalar(v) for v in value) and len(repr(value)) <= 60
    return not isinstance(value, dict)


def _explain(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling and section)"
    if kind == "literal_error":
        return f"not allowed: {err['msg'].removeprefix('Input should be ')}"
    return str(err["msg"]).removeprefix("Value error, ")


def parse_config(text: str, source: str = "sciplat.yaml") -> Config:
    """Validate a YAML document.

    Raises:
        ConfigError: with one line per problem: file, line, field path, bad value, reason.
    """
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the document must be a mapping of sections")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
            line = _line_of(node, loc)
            path = ".".join(str(p) for p in loc) or "(document)"
            value = err.get("input")
            shown = f" = {value!r}" if _short_scalar(value) else ""
            lines.append(f"{source}:{line or '?'}: {path}{shown}: {_explain(err)}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from exc


def load_config(path: Path) -> Config:
    """Read and validate ``path``.

    Raises:
        ConfigError: the file is missing, unreadable or invalid.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc.strerror}") from exc
    return parse_config(text, str(path))
