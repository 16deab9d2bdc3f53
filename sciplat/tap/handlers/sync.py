"""``/sync``: TAP 1.1 synchronous queries (GET or POST, parameter names in any case)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response

from sciplat.tap.errors import TapParameterError
from sciplat.tap.handlers.body import limited_body
from sciplat.tap.services.query import parse_format
from sciplat.tap.wiring import TapServices


@dataclass
class TapParams:
    """A request's parameters (names upper-cased; DALI: case-insensitive) and file parts."""

    values: dict[str, str]
    files: dict[str, bytes] = field(default_factory=dict)


def _too_large(size: int, limit: int) -> TapParameterError:
    return TapParameterError(
        f"the request is larger than this service accepts ({size} > {limit} bytes, "
        "max_upload_bytes): upload fewer rows or columns"
    )


async def parameters(request: Request, max_bytes: int) -> TapParams:
    """Query-string, form and multipart parameters; file parts by their field name.

    Raises:
        TapParameterError: a body over ``max_bytes`` or a malformed multipart body.
    """
    params = TapParams({k.upper(): v for k, v in request.query_params.items()})
    if request.method != "POST":
        return params
    body = await limited_body(request, max_bytes, _too_large)
    if not request.headers.get("content-type", "").startswith("multipart/"):
        text = body.decode("utf-8", "replace")
        params.values.update({k.upper(): v for k, v in parse_qsl(text, keep_blank_values=True)})
        return params

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, replay(), max_files=16, max_fields=100,
                             max_part_size=max_bytes)  # fmt: skip
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise TapParameterError(f"the multipart request cannot be read: {exc.message}") from exc
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                params.files[key] = await value.read()
            else:
                params.values[key.upper()] = value
    finally:
        await form.close()
    return params


async def sync(request: Request) -> Response:
    """Run one query and return its rows in the requested format."""
    services: TapServices = request.app.state.tap
    params = await parameters(request, services.uploads.max_bytes)
    caller = await services.access.caller(request.headers.get("authorization"))
    uploads = await asyncio.to_thread(  # astropy parses: keep the event loop free
        services.uploads.tables, params.values.get("UPLOAD"), params.files
    )
    query = services.query.request(params.values, uploads)
    _, mime = parse_format(params.values.get("RESPONSEFORMAT") or params.values.get("FORMAT"))
    result = await services.query.run(caller, query)
    return Response(services.query.serialize(result, query.format), media_type=mime)
