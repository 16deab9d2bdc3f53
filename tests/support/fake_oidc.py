"""A real OpenID Connect provider for tests: an HTTP server on 127.0.0.1 in a thread.

The test picks who "logs in" next with :meth:`FakeOIDCProvider.login_as`; ``/authorize``
then redirects straight back with a code. ``/token`` checks the client credentials, the code,
the redirect URI and the PKCE verifier, so a misconfigured client fails as it would against
a real provider. GitHub-shaped routes (``/login/oauth/*``, ``/api/v3/user*``) serve the same
users, so ``github_url`` can point here too.

    with FakeOIDCProvider() as provider:
        provider.login_as("alice", groups=["astro"], uid=4242)
        ...  # provider.issuer, provider.client_id, provider.client_secret
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt


@dataclass
class FakeUser:
    """Someone the provider knows; ``groups`` with a ':' are GitHub teams (``org:team``)."""

    name: str
    groups: list[str] = field(default_factory=list)
    uid: int | None = None
    email: str = ""
    claims: dict[str, Any] = field(default_factory=dict)

    def userinfo(self, groups_claim: str | None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "sub": f"sub-{self.name}",
            "preferred_username": self.name,
            "email": self.email or f"{self.name}@example.org",
        }
        if groups_claim:
            info[groups_claim] = list(self.groups)
        if self.uid is not None:
            info["uidNumber"] = self.uid
        info.update(self.claims)
        return info


@dataclass
class _Grant:
    user: FakeUser
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str


class FakeOIDCProvider:
    """An OIDC provider that authenticates whoever :meth:`login_as` named."""

    def __init__(
        self,
        client_id: str = "sciplat-hub",
        client_secret: str = "provider-secret-long-enough-for-hs256",  # noqa: S107
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.next_user: FakeUser | None = None
        #: Claim the groups go in; ``groups_in_userinfo=False`` puts them only in the id token.
        self.groups_claim = "groups"
        self.groups_in_userinfo = True
        #: Every request as (method, path), for assertions.
        self.requests: list[tuple[str, str]] = []
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, FakeUser] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake provider is not running; call start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def login_as(
        self,
        name: str,
        groups: list[str] | tuple[str, ...] = (),
        uid: int | None = None,
        email: str = "",
        **claims: Any,
    ) -> FakeUser:
        """Make ``name`` the user the next ``/authorize`` request logs in."""
        self.next_user = FakeUser(name, list(groups), uid, email, dict(claims))
        return self.next_user

    def start(self) -> FakeOIDCProvider:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.provider = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-oidc", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeOIDCProvider:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- protocol -------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, q: dict[str, str]) -> tuple[int, dict[str, Any] | str]:
        """Returns (302, location) or (400, error)."""
        if q.get("client_id") != self.client_id:
            return 400, {"error": "unauthorized_client", "error_description": "unknown client_id"}
        if q.get("response_type", "code") != "code" or not q.get("redirect_uri"):
            return 400, {"error": "invalid_request", "error_description": "need a redirect_uri"}
        if self.next_user is None:
            return 400, {"error": "access_denied", "error_description": "nobody is logging in"}
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._grants[code] = _Grant(
                self.next_user, q["client_id"], q["redirect_uri"],
                q.get("code_challenge", ""), q.get("nonce", ""),
            )  # fmt: skip
        back = {"code": code, **({"state": q["state"]} if "state" in q else {})}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return 302, q["redirect_uri"] + sep + urlencode(back)

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, Any]:
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if client_id != self.client_id or secret != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "bad client credentials"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # codes are single-use
        if grant is None or grant.client_id != client_id:
            return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        if grant.code_challenge:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.code_challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access] = grant.user
        now = int(time.time())
        claims = {
            **grant.user.userinfo(self.groups_claim),
            "iss": self.issuer, "aud": client_id, "iat": now, "exp": now + 300,
            **({"nonce": grant.nonce} if grant.nonce else {}),
        }  # fmt: skip
        id_token = jwt.encode(claims, self.client_secret, algorithm="HS256")
        return 200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
            "scope": "openid profile email",
        }

    def user_for(self, authorization: str) -> FakeUser | None:
        kind, _, token = authorization.partition(" ")
        if kind.lower() not in ("bearer", "token"):
            return None
        with self._lock:
            return self._tokens.get(token)


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    @property
    def provider(self) -> FakeOIDCProvider:
        return self.server.provider  # type: ignore[attr-defined, no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.provider.requests.append(("GET", url.path))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            return self._send(200, self.provider.discovery())
        if url.path in ("/authorize", "/login/oauth/authorize"):
            status, result = self.provider.authorize(query)
            if status == 302:
                return self._send(302, None, {"Location": str(result)})
            return self._send(status, result)
        user = self.provider.user_for(self.headers.get("Authorization", ""))
        if user is None:
            return self._send(401, {"error": "invalid_token"})
        answer = self._user_routes(user).get(url.path)
        if answer is None:
            return self._send(404, {"error": "not_found"})
        return self._send(200, answer())

    def _user_routes(self, user: FakeUser) -> dict[str, Callable[[], Any]]:
        """OIDC userinfo and the GitHub API, for the holder of an access token."""
        claim = self.provider.groups_claim if self.provider.groups_in_userinfo else None
        teams = [g.split(":", 1) for g in user.groups if ":" in g]
        return {
            "/userinfo": lambda: user.userinfo(claim),
            "/api/v3/user": lambda: {
                "login": user.name, "id": user.uid, "email": user.email or None,
                "name": user.name.title(),
            },
            "/api/v3/user/orgs": lambda: [{"login": g} for g in user.groups if ":" not in g],
            "/api/v3/user/teams": lambda: [
                {"slug": t, "organization": {"login": o}} for o, t in teams
            ],
        }  # fmt: skip

    def do_POST(self) -> None:
        url = urlparse(self.path)
        self.provider.requests.append(("POST", url.path))
        if url.path not in ("/token", "/login/oauth/access_token"):
            return self._send(404, {"error": "not_found"})
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        basic = None
        kind, _, cred = self.headers.get("Authorization", "").partition(" ")
        if kind.lower() == "basic":
            user, _, password = base64.b64decode(cred).decode().partition(":")
            basic = (user, password)
        status, body = self.provider.token(form, basic)
        return self._send(status, body)
