"""The OAuth authenticators against a real (fake) OIDC provider over real HTTP.

Everything is real except the hub's callback handler, of which oauthenticator reads only the
``code`` argument and the state cookie (the PKCE verifier): a real IdentityService over SQLite
in tmp_path, real HTTP to :class:`FakeOIDCProvider`, JupyterHub's ``get_authenticated_user``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from oauthenticator.oauth2 import _serialize_state
from tornado import web
from traitlets.config import Config as TraitletsConfig

import sciplat.identity.storage.database  # noqa: F401 - registers the tables
from sciplat.config import Config
from sciplat.db import Database
from sciplat.errors import ConfigError, NotFoundError
from sciplat.hub.oauth import (
    SciplatCILogonAuthenticator,
    SciplatGitHubAuthenticator,
    SciplatOAuthMixin,
    SciplatOIDCAuthenticator,
    configure_oauth,
    provider_group_name,
)
from sciplat.identity.services.users import IdentityService
from sciplat.identity.storage.accounts import HostAccounts
from tests.support.fake_oidc import FakeOIDCProvider

HUB = "http://hub.example.test"


@pytest.fixture
def provider() -> Iterator[FakeOIDCProvider]:
    with FakeOIDCProvider() as p:
        yield p


class CallbackHandler:
    """What oauthenticator reads from the hub's /hub/oauth_callback request."""

    def __init__(self, code: str, state_cookie: str) -> None:
        self.code, self.state_cookie = code, state_cookie

    def get_argument(self, name: str, default: Any = None) -> Any:
        return self.code if name == "code" else default

    def get_state_cookie(self) -> str:
        return self.state_cookie


async def browse_to_provider(auth: SciplatOAuthMixin) -> CallbackHandler:
    """Do what the browser does: follow the hub's authorize redirect, come back with a code."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state_id = uuid.uuid4().hex
    state = _serialize_state({"state_id": state_id})
    params = {
        "response_type": "code", "client_id": auth.client_id, "scope": " ".join(auth.scope),
        "redirect_uri": auth.get_callback_url(), "state": state,
        "code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256",
    }  # fmt: skip
    async with httpx.AsyncClient() as client:
        response = await client.get(auth.authorize_url, params=params)
    assert response.status_code == 302, response.text
    back = urlparse(response.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{HUB}/hub/oauth_callback"
    query = parse_qs(back.query)
    assert query["state"] == [state]
    cookie = _serialize_state({"state_id": state_id, "next_url": "", "code_verifier": verifier})
    return CallbackHandler(query["code"][0], cookie)


async def login(auth: SciplatOAuthMixin) -> dict[str, Any]:
    handler = await browse_to_provider(auth)
    model = await auth.get_authenticated_user(handler, None)
    assert model is not None
    return dict(model)


def platform(
    tmp_path: Path, provider: FakeOIDCProvider, kind: str = "oidc", **sections: Any
) -> tuple[Config, IdentityService, SciplatOAuthMixin]:
    """A config, an identity service over SQLite and the configured authenticator."""
    auth: dict[str, Any] = {"provider": kind, **sections.pop("auth", {})}
    auth[kind] = {"client_id": provider.client_id, "client_secret": provider.client_secret,
                  **({"issuer": provider.issuer, "uid_claim": "uidNumber"} if kind == "oidc"
                     else {}),
                  **auth.get(kind, {})}  # fmt: skip
    config = Config.model_validate({"auth": auth, **sections})
    identity = IdentityService(
        config, Database(f"sqlite:///{tmp_path / 'state.db'}"), HostAccounts(enabled=False)
    )
    c = TraitletsConfig()
    cls = configure_oauth(c, config, identity, HUB + "/")
    assert c.JupyterHub.authenticator_class is cls
    authenticator = cls(config=c)
    if kind == "github":
        authenticator.github_url = provider.issuer
    elif kind == "cilogon":
        authenticator.authorize_url = f"{provider.issuer}/authorize"
        authenticator.token_url = f"{provider.issuer}/token"
        authenticator.userdata_url = f"{provider.issuer}/userinfo"
    return config, identity, authenticator


def test_provider_group_names() -> None:
    assert provider_group_name("my-org:Astronomers") == "my-org-astronomers"
    assert provider_group_name("/astro") == "astro"
    assert provider_group_name("CO:COU:Dark Energy:members") == "co-cou-dark-energy-members"
    assert provider_group_name("2026 cohort") == "g2026-cohort"


@pytest.mark.asyncio
async def test_configure_discovers_endpoints_once(
    tmp_path: Path, provider: FakeOIDCProvider
) -> None:
    _, identity, auth = platform(tmp_path, provider)
    assert isinstance(auth, SciplatOIDCAuthenticator)
    assert auth.identity is identity  # not a deep copy made by traitlets
    assert auth.authorize_url == f"{provider.issuer}/authorize"
    assert auth.token_url == f"{provider.issuer}/token"
    assert auth.userdata_url == f"{provider.issuer}/userinfo"
    assert auth.oauth_callback_url == f"{HUB}/hub/oauth_callback"
    assert auth.scope == ["openid", "profile", "email"]
    assert auth.manage_groups
    assert provider.requests == [("GET", "/.well-known/openid-configuration")]


def test_configure_rejects_local_and_bad_issuer(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not log in through OAuth"):
        configure_oauth(TraitletsConfig(), Config(), None, HUB)
    with FakeOIDCProvider() as gone:
        issuer = gone.issuer
    oidc = {"issuer": issuer, "client_id": "a", "client_secret": "b"}
    config = Config.model_validate({"auth": {"provider": "oidc", "oidc": oidc}})
    with pytest.raises(ConfigError, match="cannot read"):
        configure_oauth(TraitletsConfig(), config, None, HUB)


@pytest.mark.asyncio
async def test_login_creates_user_with_uid_and_mapped_groups(
    tmp_path: Path, provider: FakeOIDCProvider
) -> None:
    _, identity, auth = platform(
        tmp_path, provider,
        auth={"group_mapping": {"astro-people": "astro"}, "admin_groups": ["ops"]},
    )  # fmt: skip
    provider.login_as("Alice.Smith", groups=["astro-people", "/Cosmo Team"], uid=4242)
    model = await login(auth)
    assert model["name"] == "alice-smith"
    assert model["groups"] == ["astro", "cosmo-team"]
    assert model["admin"] is False
    user = identity.get_user("alice-smith")
    assert (user.uid, user.provider) == (200000, "oidc")  # allocated: uid_source is allocate
    assert user.group_names == ["astro", "cosmo-team"]
    assert model["auth_state"]["sciplat"]["uid"] == 200000
    assert model["auth_state"]["sciplat"]["provider_groups"] == ["/Cosmo Team", "astro-people"]

    provider.login_as("bob", groups=["ops"])
    model = await login(auth)
    assert (model["admin"], model["groups"]) == (True, ["ops"])
    assert identity.get_user("bob").uid == 200001


@pytest.mark.asyncio
async def test_provider_uid_source(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, identity, auth = platform(
        tmp_path, provider, identity={"uid_source": "provider", "provider_uid_offset": 1000000}
    )
    provider.login_as("carol", groups=["astro"], uid=4242)
    model = await login(auth)
    assert model["auth_state"]["sciplat"]["uid"] == 1004242
    assert identity.get_user("carol").uid == 1004242


@pytest.mark.asyncio
async def test_groups_only_in_id_token(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, _, auth = platform(tmp_path, provider)
    provider.groups_in_userinfo = False
    provider.login_as("dave", groups=["astro"])
    assert (await login(auth))["groups"] == ["astro"]


@pytest.mark.asyncio
async def test_allowed_groups_refuse_outsiders(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, identity, auth = platform(tmp_path, provider, auth={"allowed_groups": ["astro"]})
    provider.login_as("eve", groups=["biology"])
    with pytest.raises(web.HTTPError) as refused:
        await login(auth)
    assert refused.value.status_code == 403
    assert "eve is not a member of any group allowed on this platform (astro)" in str(
        refused.value.log_message
    )
    with pytest.raises(NotFoundError):
        identity.get_user("eve")
    provider.login_as("frank", groups=["astro", "biology"])
    assert (await login(auth))["groups"] == ["astro", "biology"]


@pytest.mark.asyncio
async def test_wrong_client_secret_fails(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, identity, auth = platform(tmp_path, provider, auth={"oidc": {"client_secret": "wrong"}})
    provider.login_as("alice", groups=["astro"])
    with pytest.raises(web.HTTPError) as failed:
        await login(auth)
    assert failed.value.status_code == 500
    assert "client_secret" in str(failed.value.log_message)
    assert ("POST", "/token") in provider.requests
    assert identity.list_users() == []


@pytest.mark.asyncio
async def test_code_is_single_use(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, _, auth = platform(tmp_path, provider)
    provider.login_as("alice")
    handler = await browse_to_provider(auth)
    assert await auth.get_authenticated_user(handler, None)
    with pytest.raises(web.HTTPError) as replay:
        await auth.get_authenticated_user(handler, None)
    assert replay.value.status_code == 403


@pytest.mark.asyncio
async def test_second_login_replaces_provider_groups_only(
    tmp_path: Path, provider: FakeOIDCProvider
) -> None:
    _, identity, auth = platform(
        tmp_path, provider, groups=[{"name": "everyone", "members": ["alice"]}]
    )
    provider.login_as("alice", groups=["astro", "cosmo"], uid=7)
    first = await login(auth)
    identity.sync_config_groups()
    identity.set_groups("alice", ["ops"], source="cli")

    provider.login_as("alice", groups=["astro", "galaxies"], uid=7)
    second = await login(auth)
    assert second["groups"] == ["astro", "everyone", "galaxies", "ops"]
    user = identity.get_user("alice")
    assert user.group_names == ["astro", "everyone", "galaxies", "ops"]
    assert user.uid == first["auth_state"]["sciplat"]["uid"]


@pytest.mark.asyncio
async def test_local_account_name_is_refused(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, identity, auth = platform(tmp_path, provider)
    identity.add_user("alice", password="a long local password")
    provider.login_as("alice")
    with pytest.raises(web.HTTPError) as refused:
        await login(auth)
    assert refused.value.status_code == 403
    assert "'local' provider" in str(refused.value.log_message)


@pytest.mark.asyncio
async def test_github_orgs_and_teams(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, identity, auth = platform(
        tmp_path, provider, "github",
        auth={"group_mapping": {"my-org:astronomers": "astro"},
              "github": {"allowed_organizations": ["my-org"]}},
        identity={"uid_source": "provider", "provider_uid_offset": 1000000},
    )  # fmt: skip
    assert isinstance(auth, SciplatGitHubAuthenticator)
    assert auth.scope == ["read:user", "read:org"]
    provider.login_as("OctoCat", groups=["my-org", "my-org:astronomers", "my-org:Big Team"], uid=5)
    model = await login(auth)
    assert model["name"] == "octocat"
    assert model["groups"] == ["astro", "my-org", "my-org-big-team"]
    assert identity.get_user("octocat").uid == 1000005

    provider.login_as("stranger", groups=["other-org"], uid=6)
    with pytest.raises(web.HTTPError) as refused:
        await login(auth)
    assert refused.value.status_code == 403
    assert "GitHub organisation or team allowed" in str(refused.value.log_message)


@pytest.mark.asyncio
async def test_cilogon_claims(tmp_path: Path, provider: FakeOIDCProvider) -> None:
    _, identity, auth = platform(tmp_path, provider, "cilogon")
    assert isinstance(auth, SciplatCILogonAuthenticator)
    provider.groups_claim = "isMemberOf"
    provider.login_as("ignored", groups=["CO:COU:astro:members"], eppn="Carol.Jones@uni.edu")
    model = await login(auth)
    assert model["name"] == "carol-jones"
    assert model["groups"] == ["co-cou-astro-members"]
    assert identity.get_user("carol-jones").provider == "cilogon"
