"""The TAP service as an ASGI app (Starlette), mounted at ``config.prefix``.

Errors become VOTable documents with QUERY_STATUS=ERROR here and nowhere else. Query errors
(bad ADQL, unknown names, timeouts) are sent with HTTP 200, as TAP 1.0 requires and pyvo expects
(it shows the message only then); authentication errors keep 401/403; server faults are logged
with their traceback and answered with a short message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from sciplat.tap.errors import TapAuthError, TapError, TapThrottledError
from sciplat.tap.handlers import async_, sync, tables, vosi
from sciplat.tap.output.votable import error_votable
from sciplat.tap.wiring import TapServices

log = logging.getLogger(__name__)
_VOTABLE = "application/x-votable+xml"


async def _tap_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TapError)  # noqa: S101 - registered for TapError only
    status = 200 if exc.status_code == 400 else exc.status_code
    headers = (
        {"WWW-Authenticate": 'Bearer realm="sciplat"'} if isinstance(exc, TapAuthError) else {}
    )
    if isinstance(exc, TapThrottledError):
        headers["Retry-After"] = str(exc.retry_after)
    if request.url.path.startswith(f"{request.app.state.tap.config.prefix}/tables/"):
        # MyDB's REST resources are not TAP queries: keep the status, answer in plain text
        return Response(exc.message + "\n", exc.status_code, headers, media_type="text/plain")
    return Response(error_votable(exc.message), status, headers, media_type=_VOTABLE)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("TAP request %s failed", request.url.path, exc_info=exc)
    message = "the service failed on this request; the operators have the details in its log"
    return Response(error_votable(message), 500, media_type=_VOTABLE)


async def _index(request: Request) -> Response:
    return Response(
        "sciplat TAP service: /sync and /async (LANG=ADQL, QUERY=...), /capabilities, "
        "/availability, /tables\n",
        media_type="text/plain",
    )


def create_app(services: TapServices) -> Starlette:
    """The ASGI app serving ``services`` under ``services.config.prefix``."""
    routes = [
        Route("/", _index),
        Route("/sync", sync.sync, methods=["GET", "POST"]),
        Route("/async", async_.jobs, methods=["GET", "POST"]),
        Route("/async/{job_id}", async_.job, methods=["GET", "POST", "DELETE"]),
        Route("/async/{job_id}/phase", async_.phase, methods=["GET", "POST"]),
        *(
            Route(f"/async/{{job_id}}/{name}", async_.attribute, methods=["GET", "POST"])
            for name in ("executionduration", "destruction", "quote", "owner", "runId")
        ),
        Route("/async/{job_id}/error", async_.error),
        Route("/async/{job_id}/parameters", async_.parameters_list, methods=["GET", "POST"]),
        Route("/async/{job_id}/results", async_.results),
        Route("/async/{job_id}/results/result", async_.result),
        Route("/capabilities", vosi.capabilities),
        Route("/availability", vosi.availability),
        Route("/tables", vosi.tables),
        Route("/examples", vosi.examples),
        Route("/tables/{name}/sharing", tables.sharing, methods=["GET", "POST"]),
        Route("/tables/{name:path}", tables.table, methods=["GET", "PUT", "DELETE"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.jobs.start()
        yield
        await services.jobs.stop()
        services.jobs.store.close()
        services.mydb.store.close()
        if services.access.hub is not None:
            await services.access.hub.close()
        services.backend.close()

    app = Starlette(
        routes=[Mount(services.config.prefix, routes=routes)],
        exception_handlers={TapError: _tap_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.tap = services
    return app
