"""The image registry's HTTP API (Docker Registry v2 / OCI distribution): the tags of the lab
image's repository. Hand-written on httpx because the API needed is one paginated GET plus
the anonymous bearer-token handshake; the registry client libraries on PyPI are either
unmaintained or pull a whole container toolchain."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx

from sciplat.errors import SciplatError

#: pages of 1,000 tags; a repository with more than a million tags is not a lab image
MAX_PAGES = 1000
_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(SciplatError):
    """The registry could not be read; the menu keeps its last good list."""

    code = "registry_unavailable"
    status_code = 502


class RegistryClient:
    """Reads the tags of ``repository`` at ``base_url`` (``https://registry.example.org``)."""

    def __init__(self, base_url: str, repository: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.repository = repository
        self.timeout = timeout

    async def tags(self) -> list[str]:
        """Every tag of the repository, following the registry's pagination.

        Raises:
            RegistryError: unreachable, refused, or not a registry's answer.
        """
        url = f"{self.base_url}/v2/{self.repository}/tags/list?n=1000"
        tags: list[str] = []
        headers: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            for _ in range(MAX_PAGES):
                try:
                    response = await client.get(url, headers=headers)
                    if response.status_code == 401 and not headers:
                        headers = await self._authorize(client, response)
                        response = await client.get(url, headers=headers)
                except httpx.HTTPError as exc:
                    raise RegistryError(
                        f"The image registry {self.base_url} cannot be reached ({exc}); check "
                        "kubernetes.image.registry_url and the network."
                    ) from exc
                tags += self._page(response)
                following = response.links.get("next", {}).get("url")
                if not following:
                    return tags
                url = urljoin(self.base_url, following)
        raise RegistryError(f"The image registry {self.base_url} kept paginating; giving up.")

    def _page(self, response: httpx.Response) -> list[str]:
        if response.status_code != 200:
            raise RegistryError(
                f"The image registry answered {response.status_code} for the tags of "
                f"{self.repository}: {response.text[:200]}. Check kubernetes.image.repository "
                "(and that the registry allows anonymous reads)."
            )
        try:
            data = response.json()
            tags = data.get("tags") or []
        except (ValueError, AttributeError) as exc:
            raise RegistryError(f"{self.base_url} did not answer like a registry") from exc
        return [str(t) for t in tags]

    async def _authorize(
        self, client: httpx.AsyncClient, response: httpx.Response
    ) -> dict[str, str]:
        """The anonymous bearer-token handshake the registry's 401 asks for."""
        challenge = response.headers.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer "):
            shown = challenge or "no challenge"
            raise RegistryError(
                f"The image registry {self.base_url} needs credentials ({shown}); only "
                "anonymous pulls are supported for the menu."
            )
        params = dict(_PARAM.findall(challenge))
        realm = params.pop("realm", "")
        if not realm:
            raise RegistryError(f"The image registry {self.base_url} gave no token realm.")
        answer = await client.get(realm, params=params)
        if answer.status_code != 200:
            raise RegistryError(f"The registry's token service refused ({answer.status_code}).")
        token = answer.json().get("token") or answer.json().get("access_token")
        return {"Authorization": f"Bearer {token}"}
