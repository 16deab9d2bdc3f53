"""Login through GitHub, CILogon or any OpenID Connect provider.

oauthenticator does the OAuth 2.0 exchange; :class:`SciplatOAuthMixin` then turns the provider's
answer into a platform user: the provider's name through :func:`normalize_username`, its groups
into valid group names, and :meth:`IdentityService.login_from_provider` for ``group_mapping``,
``allowed_groups`` and the UID. The auth model carries the platform's groups (``manage_groups``)
and admin flag, so JupyterHub follows the platform. Access is decided by the identity service
(and, for GitHub, ``allowed_organizations``), not by oauthenticator's allow lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

import httpx
import jwt
import traitlets
from oauthenticator.cilogon import CILogonLoginHandler, CILogonOAuthenticator
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.oauth2 import OAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets.config import Config as TraitletsConfig

from sciplat.config import Config, OIDCAuth
from sciplat.errors import ConfigError, SciplatError
from sciplat.naming import normalize_username

AuthModel = dict[str, Any]


def provider_group_name(raw: str) -> str:
    """Turn a provider group (``my-org:Team``, ``/astro``) into a group name (``my-org-team``)."""
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-")
    if name and not name[0].isalpha():
        name = "g" + name
    return name[:32]


def _as_list(value: object) -> list[str]:
    """A claim holding groups: a list, or one comma-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value] if isinstance(value, Iterable) else []


def _as_int(value: object) -> int | None:
    return int(str(value)) if str(value).isdigit() else None


class SciplatOAuthMixin(OAuthenticator):  # type: ignore[misc]
    """Maps a provider login to a platform user; put it first among the bases."""

    #: Recorded as the user's provider and as the source of the memberships it gives.
    provider_name: ClassVar[str] = "oauth"

    identity = traitlets.Any(
        None, config=True, help="The IdentityService that creates users and hands out ids."
    )
    platform_config = traitlets.Any(None, config=True, help="The platform's sciplat Config.")

    @traitlets.default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @traitlets.default("any_allow_config")
    def _any_allow_config_default(self) -> bool:
        # check_allowed below is the allow configuration: the identity service decides.
        return True

    # -- hooks for the three providers -------------------------------------------------
    def provider_username(self, user_info: dict[str, Any]) -> str:
        """The provider's own name for the user (before normalisation)."""
        return str(super().user_info_to_username(user_info))

    async def provider_groups(self, auth_state: dict[str, Any]) -> list[str]:
        """The provider's group names, unnormalised (``org:team``, ``/astro``)."""
        return []

    def provider_uid(self, auth_state: dict[str, Any]) -> int | None:
        """The provider's numeric user id, if it has one."""
        return None

    # -- oauthenticator hooks ------------------------------------------------------------
    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        """The platform name: :func:`normalize_username` of the provider's name."""
        raw = self.provider_username(user_info)
        try:
            return normalize_username(raw)
        except SciplatError as exc:
            raise web.HTTPError(403, f"Cannot log in as {raw!r}: {exc.message}") from exc

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Exchange the code, turning the provider's refusals into messages people can act on."""
        try:
            return dict(await super().get_token_info(handler, params))
        except HTTPClientError as exc:
            if exc.code == 401:
                message = (
                    "The login provider rejected the hub's client credentials (HTTP 401): the "
                    f"administrator should check auth.{self.provider_name}.client_id and "
                    "client_secret."
                )
                raise web.HTTPError(500, message) from exc
            if exc.code == 400:
                message = "The login provider did not accept this login (HTTP 400); log in again."
                raise web.HTTPError(403, message) from exc
            raise

    async def update_auth_model(self, auth_model: AuthModel) -> AuthModel:
        """Create or update the platform user; refuse the login with a reason if not allowed."""
        auth_model = await super().update_auth_model(auth_model)
        if self.identity is None or self.platform_config is None:
            raise ConfigError(f"{type(self).__name__}: identity and platform_config are not set")
        name, auth_state = auth_model["name"], auth_model["auth_state"]
        raw_groups = await self.provider_groups(auth_state)
        mapping = self.platform_config.auth.group_mapping
        groups = [g if g in mapping else provider_group_name(g) for g in raw_groups]
        try:
            user = self.identity.login_from_provider(
                name, self.provider_name, groups, self.provider_uid(auth_state)
            )
        except SciplatError as exc:
            self.log.warning("Refused login of %s through %s: %s", name, self.provider_name, exc)
            raise web.HTTPError(403, exc.message) from exc
        auth_model["admin"] = bool(user.admin or name in self.platform_config.auth.admin_users)
        auth_model["groups"] = list(user.group_names)
        auth_state["sciplat"] = {
            "uid": user.uid,
            "gid": user.gid,
            "groups": list(user.group_names),
            "provider_groups": sorted(raw_groups),
        }
        return auth_model

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """The platform groups :meth:`update_auth_model` stored (config and CLI ones too)."""
        return set(auth_state.get("sciplat", {}).get("groups", []))

    async def check_allowed(self, username: str, auth_model: AuthModel | None) -> bool:
        """Allowed once :meth:`update_auth_model` has passed the identity service."""
        return auth_model is not None and "sciplat" in (auth_model.get("auth_state") or {})


class SciplatOIDCAuthenticator(SciplatOAuthMixin, GenericOAuthenticator):  # type: ignore[misc]
    """Any OpenID Connect provider; groups and uid come from ``auth.oidc`` claims."""

    provider_name = "oidc"

    def _claims(self, auth_state: dict[str, Any]) -> dict[str, Any]:
        """The id token's claims, overlaid by the userinfo answer."""
        claims: dict[str, Any] = {}
        if auth_state.get("id_token"):
            try:
                # The token came straight from the token endpoint (OIDC core 3.1.3.7).
                claims.update(
                    jwt.decode(auth_state["id_token"], options={"verify_signature": False})
                )
            except jwt.PyJWTError as exc:
                self.log.warning("Ignoring an id token that does not decode: %s", exc)
        claims.update(auth_state.get(self.user_auth_state_key) or {})
        return claims

    async def provider_groups(self, auth_state: dict[str, Any]) -> list[str]:
        claim = self.platform_config.auth.oidc.groups_claim
        return _as_list(self._claims(auth_state).get(claim)) if claim else []

    def provider_uid(self, auth_state: dict[str, Any]) -> int | None:
        claim = self.platform_config.auth.oidc.uid_claim
        return _as_int(self._claims(auth_state).get(claim)) if claim else None


class SciplatGitHubAuthenticator(SciplatOAuthMixin, GitHubOAuthenticator):  # type: ignore[misc]
    """GitHub: organisations become ``org`` groups and teams ``org:team`` (then ``org-team``)."""

    provider_name = "github"

    @traitlets.default("scope")
    def _scope_default(self) -> list[str]:
        return ["read:user", "read:org"]

    async def provider_groups(self, auth_state: dict[str, Any]) -> list[str]:
        """Organisations and teams; refuses users outside ``allowed_organizations``."""
        token = auth_state["token_response"]
        access, kind = token["access_token"], token["token_type"]
        orgs, teams = [
            await self._paginated_fetch(f"{self.github_api}/user/{what}?per_page=100", access, kind)
            for what in ("orgs", "teams")
        ]
        groups = [o["login"] for o in orgs]
        groups += [f"{t['organization']['login']}:{t['slug']}" for t in teams]
        allowed = {a.lower() for a in self.allowed_organizations}
        if allowed and not allowed & {g.lower() for g in groups}:
            login = auth_state[self.user_auth_state_key].get("login")
            raise web.HTTPError(
                403,
                f"{login} is not a member of any GitHub organisation or team allowed on this "
                f"platform ({', '.join(sorted(allowed))}); ask its administrators for access.",
            )
        return groups

    def provider_uid(self, auth_state: dict[str, Any]) -> int | None:
        return _as_int(auth_state[self.user_auth_state_key].get("id"))


class _CILogonLoginHandler(CILogonLoginHandler):  # type: ignore[misc]
    """CILogon's login handler, which fails without ``idps``; then a plain OAuth redirect."""

    def authorize_redirect(self, *args: Any, **kwargs: Any) -> Any:
        if self.authenticator.idps:
            return super().authorize_redirect(*args, **kwargs)
        return super(CILogonLoginHandler, self).authorize_redirect(*args, **kwargs)


class SciplatCILogonAuthenticator(SciplatOAuthMixin, CILogonOAuthenticator):  # type: ignore[misc]
    """CILogon: user name and groups from ``auth.cilogon``'s claims (eppn, isMemberOf)."""

    provider_name = "cilogon"
    login_handler = _CILogonLoginHandler

    def provider_username(self, user_info: dict[str, Any]) -> str:
        if self.idps:  # the operator configured CILogon's own per-IdP username derivation
            return super().provider_username(user_info)
        claim = self.platform_config.auth.cilogon.username_claim
        if not user_info.get(claim):
            raise web.HTTPError(403, f"CILogon did not send the {claim!r} claim for this login.")
        return str(user_info[claim])

    async def provider_groups(self, auth_state: dict[str, Any]) -> list[str]:
        claim = self.platform_config.auth.cilogon.groups_claim
        return _as_list(auth_state[self.user_auth_state_key].get(claim))


AUTHENTICATORS: dict[str, type[SciplatOAuthMixin]] = {
    "oidc": SciplatOIDCAuthenticator,
    "github": SciplatGitHubAuthenticator,
    "cilogon": SciplatCILogonAuthenticator,
}


def discover_oidc(issuer: str, timeout: float = 10.0) -> dict[str, Any]:
    """Fetch ``<issuer>/.well-known/openid-configuration``.

    Raises:
        ConfigError: unreachable, not JSON, or without authorize and token endpoints.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
        doc = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError(f"auth.oidc.issuer: cannot read {url}: {exc}") from exc
    if not isinstance(doc, dict) or not {"authorization_endpoint", "token_endpoint"} <= set(doc):
        raise ConfigError(f"auth.oidc.issuer: {url} lacks authorization_endpoint/token_endpoint")
    return doc


def _configure_oidc(section: TraitletsConfig, oidc: OIDCAuth) -> None:
    endpoints = {"authorize_url": oidc.authorize_url, "token_url": oidc.token_url}
    userinfo = oidc.userinfo_url
    if oidc.issuer and not (all(endpoints.values()) and userinfo):
        doc = discover_oidc(oidc.issuer)
        endpoints["authorize_url"] = endpoints["authorize_url"] or doc["authorization_endpoint"]
        endpoints["token_url"] = endpoints["token_url"] or doc["token_endpoint"]
        userinfo = userinfo or doc.get("userinfo_endpoint", "")
    if not all(endpoints.values()):
        raise ConfigError("auth.oidc: set issuer, or authorize_url and token_url")
    section.update(endpoints, username_claim=oidc.username_claim)
    if userinfo:
        section.userdata_url = userinfo
    else:
        section.userdata_from_id_token = True


def configure_oauth(
    c: TraitletsConfig, config: Config, identity: Any, public_url: str
) -> type[SciplatOAuthMixin]:
    """Make ``config.auth.provider`` the hub's authenticator; returns its class.

    Sets ``c.JupyterHub.authenticator_class`` and the class's traitlets: client id and secret,
    callback URL (default ``<public_url>/hub/oauth_callback``), scopes, and for OIDC the
    endpoints (discovered from ``issuer`` once, now, unless all are given).

    Raises:
        ConfigError: the provider is not an OAuth one, or its settings are incomplete.
    """
    provider = config.auth.provider
    if provider not in AUTHENTICATORS:
        raise ConfigError(f"auth.provider {provider!r} does not log in through OAuth")
    cls = AUTHENTICATORS[provider]
    settings = getattr(config.auth, provider)
    if not settings.client_id or not settings.client_secret:
        raise ConfigError(f"auth.{provider}: client_id and client_secret are required")
    callback = settings.callback_url or (
        f"{public_url.rstrip('/')}/hub/oauth_callback" if public_url else ""
    )
    if not callback:
        raise ConfigError(f"auth.{provider}.callback_url: needed when the public URL is unknown")
    section = c[cls.__name__]
    section.update(
        identity=identity, platform_config=config, manage_groups=True,
        client_id=settings.client_id, client_secret=settings.client_secret,
        oauth_callback_url=callback,
    )  # fmt: skip
    if settings.scopes or provider == "oidc":
        section.scope = list(settings.scopes) or ["openid", "profile", "email"]
    if provider == "oidc":
        _configure_oidc(section, config.auth.oidc)
    elif provider == "github":
        section.allowed_organizations = set(config.auth.github.allowed_organizations)
    c.JupyterHub.authenticator_class = cls
    return cls
