"""A container registry for tests: the Docker Registry v2 tags API on 127.0.0.1 (aiohttp, in
the test's event loop), paginated with ``Link`` headers like the real one, optionally behind
the anonymous bearer-token handshake (``auth=True``).

    async with FakeRegistry({"sciplat/lab": ["r28_0_0", "w_2026_47"]}, page_size=1) as reg:
        client = RegistryClient(reg.url, "sciplat/lab")
"""

from __future__ import annotations

import secrets
from types import TracebackType

from aiohttp import web

from tests.support.fake_kubernetes import serve


class FakeRegistry:
    def __init__(
        self, repositories: dict[str, list[str]], page_size: int = 100, auth: bool = False
    ) -> None:
        self.repositories = repositories
        self.page_size = page_size
        self.auth = auth
        self.token = secrets.token_hex(8)
        #: every request's path and query, in order
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeRegistry:
        app = web.Application()
        app.router.add_get("/token", self._token)
        app.router.add_get("/v2/{repository:.+}/tags/list", self._tags)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _token(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if request.query.get("service") != "fake-registry":
            return web.json_response({"errors": [{"code": "DENIED"}]}, status=400)
        return web.json_response({"token": self.token})

    async def _tags(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        repository = request.match_info["repository"]
        if self.auth and request.headers.get("Authorization") != f"Bearer {self.token}":
            challenge = (
                f'Bearer realm="{self.url}/token",service="fake-registry",'
                f'scope="repository:{repository}:pull"'
            )
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED"}]},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        if repository not in self.repositories:
            return web.json_response({"errors": [{"code": "NAME_UNKNOWN"}]}, status=404)
        tags = sorted(self.repositories[repository])
        size = min(int(request.query.get("n", self.page_size)), self.page_size)
        last = request.query.get("last", "")
        rest = [t for t in tags if t > last] if last else tags
        page = rest[:size]
        headers = {}
        if len(rest) > size:
            headers["Link"] = f'</v2/{repository}/tags/list?n={size}&last={page[-1]}>; rel="next"'
        return web.json_response({"name": repository, "tags": page}, headers=headers)
