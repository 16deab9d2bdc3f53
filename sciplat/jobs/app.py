"""The jobs service as an ASGI app (Starlette), mounted at ``config.prefix``.

Errors become ``{"error": code, "message": ...}`` with their HTTP status here and nowhere
else; server faults are logged with their traceback and answered with a short message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sciplat.errors import SciplatError, ThrottledError
from sciplat.jobs.errors import JobsAuthError
from sciplat.jobs.handlers import jobs
from sciplat.jobs.wiring import JobsServices

log = logging.getLogger(__name__)


async def _error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SciplatError)  # noqa: S101 - registered for SciplatError only
    headers = {}
    if isinstance(exc, JobsAuthError):
        headers["WWW-Authenticate"] = 'Bearer realm="sciplat"'
    if isinstance(exc, ThrottledError):
        headers["Retry-After"] = str(exc.retry_after)
    status = exc.status_code if exc.status_code != 500 else 503
    return JSONResponse({"error": exc.code, "message": exc.message}, status, headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("jobs request %s failed", request.url.path, exc_info=exc)
    message = "the service failed on this request; the operators have the details in its log"
    return JSONResponse({"error": "server_error", "message": message}, 500)


def create_app(services: JobsServices) -> Starlette:
    """The ASGI app serving ``services`` under ``services.config.prefix``; the scheduler runs
    for the app's lifetime."""
    p = services.config.prefix
    routes = [
        # the collection answers with and without a trailing slash (no redirect for clients)
        Route(p, jobs.submit, methods=["POST"]),
        Route(p, jobs.listing, methods=["GET"]),
        Route(p + "/", jobs.submit, methods=["POST"]),
        Route(p + "/", jobs.listing, methods=["GET"]),
        Route(p + "/cache", jobs.cache_list, methods=["GET"]),
        Route(p + "/cache/{key}", jobs.cache_drop, methods=["DELETE"]),
        Route(p + "/{id}", jobs.status, methods=["GET"]),
        Route(p + "/{id}", jobs.cancel, methods=["DELETE"]),
        Route(p + "/{id}/notebook", jobs.notebook, methods=["GET"]),
        Route(p + "/{id}/html", jobs.html, methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.jobs.start()
        yield
        await services.jobs.close()
        await services.access.hub.close()
        services.store.close()

    app = Starlette(
        routes=routes,
        exception_handlers={SciplatError: _error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.jobs = services
    return app
