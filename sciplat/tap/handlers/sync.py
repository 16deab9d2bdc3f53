"""``/sync``: TAP 1.1 synchronous queries (GET or POST, parameter names in any case)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from sciplat.tap.errors import AdqlUnsupportedError, TapParameterError
from sciplat.tap.models.query import QueryRequest
from sciplat.tap.services.query import parse_format
from sciplat.tap.wiring import TapServices

_LANGS = {"adql", "adql-2.0", "adql-2.1"}


async def parameters(request: Request) -> dict[str, str]:
    """Query-string and form parameters, names upper-cased (DALI: names are case-insensitive).

    Raises:
        AdqlUnsupportedError: a multipart request (table uploads are not supported yet).
    """
    params = {k.upper(): v for k, v in request.query_params.items()}
    if request.method == "POST":
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/"):
            raise AdqlUnsupportedError("table uploads (UPLOAD) are not supported yet")
        body = (await request.body()).decode("utf-8", "replace")
        params.update({k.upper(): v for k, v in parse_qsl(body, keep_blank_values=True)})
    return params


async def sync(request: Request) -> Response:
    """Run one query and return its rows in the requested format."""
    services: TapServices = request.app.state.tap
    params = await parameters(request)
    caller = await services.access.caller(request.headers.get("authorization"))
    if params.get("REQUEST", "doQuery").lower() != "doquery":
        raise TapParameterError(f"REQUEST={params['REQUEST']} is not supported: use doQuery")
    lang = params.get("LANG", "ADQL")
    if lang.lower() not in _LANGS:
        raise TapParameterError(f"LANG={lang} is not supported: this service speaks ADQL")
    if params.get("UPLOAD"):
        raise AdqlUnsupportedError("table uploads (UPLOAD) are not supported yet")
    fmt, mime = parse_format(params.get("RESPONSEFORMAT") or params.get("FORMAT"))
    maxrec = services.query.maxrec(params.get("MAXREC"))
    query = QueryRequest(query=params.get("QUERY", ""), format=fmt, maxrec=maxrec)  # type: ignore[arg-type]
    result = await services.query.run(caller, query)
    return Response(services.query.serialize(result, fmt), media_type=mime)
