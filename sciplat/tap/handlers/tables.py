"""``/tables/<schema>.<table>``: users' own tables (MyDB), HTTP only; policy in services/mydb.

- ``PUT`` with a VOTable, CSV or Parquet body (by Content-Type) saves the caller's table
  (201 new, 200 replaced); ``PUT ...?job=<id>`` with no body saves the result of one of the
  caller's COMPLETED async jobs (a VOTable, CSV or Parquet result) instead.
- ``GET`` describes a table the caller may read, catalogue or user table (a VOSI tableset of
  that one table); ``DELETE`` drops one of theirs (204).
- ``GET/POST /tables/<schema>.<table>/sharing`` (``group=...&action=share|unshare``) shows or
  changes the groups it is shared with (JSON).
Errors here keep their HTTP status (app.py answers them as text, not TAP VOTables).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sciplat.tap.errors import TapParameterError
from sciplat.tap.handlers.body import limited_body
from sciplat.tap.output import vosi
from sciplat.tap.services.mydb_formats import job_result_type, read_body
from sciplat.tap.wiring import TapServices


def _too_large(size: int, limit: int) -> TapParameterError:
    return TapParameterError(
        f"the table is larger than this service accepts in one request ({size} > {limit} "
        "bytes, mydb_max_bytes): save fewer rows or columns, or send it as Parquet"
    )


async def table(request: Request) -> Response:
    """PUT (save), GET (describe) or DELETE (drop) one user table."""
    services: TapServices = request.app.state.tap
    name = request.path_params["name"]
    caller = await services.access.caller(request.headers.get("authorization"))
    if request.method == "GET":
        one = services.mydb.tableset_of(caller, name)
        return Response(vosi.tableset(one), media_type="text/xml")
    if request.method == "DELETE":
        services.mydb.drop(caller, name)
        return Response(status_code=204)
    services.mydb.writable(caller, name)  # before reading a body that may be large
    job_id = next((v for k, v in request.query_params.items() if k.lower() == "job"), None)
    body = await limited_body(request, services.config.mydb_max_bytes, _too_large)
    if job_id is not None:
        if body:
            raise TapParameterError("send either a table in the body or ?job=<id>, not both")
        job, body = await asyncio.to_thread(services.jobs.result, caller, job_id)
        content_type = job_result_type(job_id, job.result_mime)
        truncated = job.overflow
    else:
        content_type = request.headers.get("content-type", "")
        truncated = False
    data = await asyncio.to_thread(read_body, body, content_type)
    saved, created = await asyncio.to_thread(services.mydb.save, caller, name, data)
    # a job cut at MAXREC (or the query_rows quota) saved what it returned: say so
    answer = {**saved.to_dict(), "truncated": truncated}
    return JSONResponse(answer, status_code=201 if created else 200)


async def sharing(request: Request) -> Response:
    """GET: the groups a table is shared with (its owner only); POST ``group``, ``action``."""
    services: TapServices = request.app.state.tap
    name = request.path_params["name"]
    caller = await services.access.caller(request.headers.get("authorization"))
    if request.method == "GET":
        found = services.mydb.describe(caller, name)
        return JSONResponse(found.to_dict(with_sharing=services.access.owns(caller, found.owner)))
    values = {k.lower(): v for k, v in request.query_params.items()}
    body = await limited_body(request, 64 * 1024, _too_large)
    values.update({k.lower(): v for k, v in parse_qsl(body.decode("utf-8", "replace"))})
    action = values.get("action", "share").lower()
    if action not in ("share", "unshare") or not values.get("group"):
        raise TapParameterError("send group=<group>&action=share (or action=unshare)")
    changed = await asyncio.to_thread(
        services.mydb.share, caller, name, values["group"], action == "share"
    )
    return JSONResponse(changed.to_dict())
