"""VOSI and DALI endpoints: ``/capabilities``, ``/availability``, ``/tables``, ``/examples``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sciplat.tap.output import vosi
from sciplat.tap.output.examples import examples_document
from sciplat.tap.services.examples import example_ids, examples_for
from sciplat.tap.wiring import TapServices

_XML = "text/xml"


def base_url(request: Request) -> str:
    """The service's public URL (scheme and host as the client used them, plus the prefix)."""
    services: TapServices = request.app.state.tap
    return f"{request.url.scheme}://{request.url.netloc}{services.config.prefix}"


async def capabilities(request: Request) -> Response:
    services: TapServices = request.app.state.tap
    cfg = services.config
    text = vosi.capabilities(
        base_url(request), cfg.default_maxrec, cfg.max_maxrec, cfg.sync_timeout,
        upload_bytes=cfg.max_upload_bytes,
        retention_seconds=int(cfg.job_retention_days * 86400),
        async_seconds=(int(cfg.async_default_seconds), int(cfg.async_max_seconds)),
        url_uploads=services.uploads.fetcher.enabled,
    )  # fmt: skip
    return Response(text, media_type=_XML)


async def availability(request: Request) -> Response:
    services: TapServices = request.app.state.tap
    try:
        tables = len(services.backend.catalogue().tables)
    except Exception as exc:  # any failure means "not available"; the note says which
        return Response(vosi.availability(False, f"catalogue unreadable: {exc}"), media_type=_XML)
    return Response(vosi.availability(True, f"{tables} tables"), media_type=_XML)


async def examples(request: Request) -> Response:
    """The DALI examples document: queries made for the loaded catalogues, and the operator's."""
    services: TapServices = request.app.state.tap
    found = examples_for(services.backend.catalogue(), services.config.examples)
    text = examples_document(found, example_ids(found), "Example queries")
    return Response(text, media_type="application/xhtml+xml")


async def tables(request: Request) -> Response:
    """The tableset; with a token, plus the caller's readable user tables (MyDB)."""
    services: TapServices = request.app.state.tap
    catalogue = services.backend.catalogue()
    authorization = request.headers.get("authorization")
    if authorization:
        caller = await services.access.caller(authorization)
        catalogue = services.mydb.view(caller, catalogue).catalogue
    return Response(vosi.tableset(catalogue), media_type=_XML)
