"""The hub's REST API: who owns a token (``GET /hub/api/user`` with the token itself)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import httpx

from sciplat.tap.errors import TapAuthError


@dataclass(frozen=True)
class TokenOwner:
    """What the hub says about a token: its user (or service), groups and the token's scopes."""

    name: str
    groups: frozenset[str]
    scopes: frozenset[str]


class HubClient:
    """Asks the hub who a token belongs to, and remembers answers for ``cache_seconds``."""

    def __init__(
        self, api_url: str, cache_seconds: int = 60, client: httpx.AsyncClient | None = None
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.cache_seconds = cache_seconds
        self._client = client or httpx.AsyncClient(timeout=10.0)
        self._cache: dict[str, tuple[float, TokenOwner]] = {}

    async def owner(self, token: str) -> TokenOwner:
        """The token's owner.

        Raises:
            TapAuthError: the hub does not know the token, or cannot be reached.
        """
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            response = await self._client.get(
                f"{self.api_url}/user", headers={"Authorization": f"token {token}"}
            )
        except httpx.HTTPError as exc:
            raise TapAuthError(
                "cannot check the token: the hub does not answer; try again shortly"
            ) from exc
        if response.status_code in (401, 403, 404):
            raise TapAuthError("the API token is not valid (expired or revoked): make a new one")
        if response.status_code != 200:
            raise TapAuthError(f"cannot check the token: the hub answered {response.status_code}")
        body = response.json()
        owner = TokenOwner(
            name=str(body.get("name", "")),
            groups=frozenset(body.get("groups") or ()),
            scopes=frozenset(body.get("scopes") or ()),
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, owner)
        return owner

    async def close(self) -> None:
        await self._client.aclose()
