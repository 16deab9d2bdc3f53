"""``/async``: TAP 1.1 asynchronous queries as UWS 1.1 jobs (HTTP only; policy in JobService).

Creating a job and changing it answer ``303 See Other`` to the job (or, after a delete, to the
job list), as UWS 1.1 §2.2.3 says. Parameter names are case-insensitive; values of PHASE and
ACTION too.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sciplat.tap.errors import TapParameterError
from sciplat.tap.handlers.sync import TapParams, parameters
from sciplat.tap.handlers.vosi import base_url
from sciplat.tap.models.job import Job, Phase
from sciplat.tap.models.query import Caller
from sciplat.tap.output import uws
from sciplat.tap.output.votable import error_votable
from sciplat.tap.services.jobs import JobNotFoundError
from sciplat.tap.wiring import TapServices

_XML = "text/xml"
_TEXT = "text/plain"


async def _context(request: Request) -> tuple[TapServices, Caller, TapParams]:
    services: TapServices = request.app.state.tap
    params = await parameters(request, services.uploads.max_bytes)
    caller = await services.access.caller(request.headers.get("authorization"))
    return services, caller, params


def _to_job(request: Request, job: Job) -> RedirectResponse:
    return RedirectResponse(f"{base_url(request)}/async/{job.id}", status_code=303)


def _job_xml(request: Request, services: TapServices, job: Job) -> Response:
    size = services.jobs.result_size(job)
    return Response(uws.job_document(job, base_url(request), size), media_type=_XML)


async def jobs(request: Request) -> Response:
    """GET: the caller's jobs (PHASE, AFTER, LAST filters); POST: a new job."""
    services, caller, params = await _context(request)
    if request.method == "GET":
        phases = [v for k, v in request.query_params.multi_items() if k.upper() == "PHASE"]
        found = services.jobs.list_jobs(caller, phases, params.values.get("AFTER"),
                                   params.values.get("LAST"))  # fmt: skip
        return Response(uws.job_list(found, base_url(request)), media_type=_XML)
    job = await asyncio.to_thread(services.jobs.create, caller, params.values, params.files)
    if params.values.get("PHASE", "").upper() == "RUN":
        job = await services.jobs.run(caller, job.id)
    return _to_job(request, job)


async def job(request: Request) -> Response:
    """GET (with optional WAIT/PHASE): the job; POST: ACTION=DELETE, PHASE, other changes;
    DELETE: destroy it."""
    services, caller, params = await _context(request)
    job_id = request.path_params["job_id"]
    values = params.values
    if request.method == "GET":
        if "WAIT" in values:
            try:
                seconds = float(values["WAIT"])
            except ValueError:
                raise TapParameterError(f"WAIT={values['WAIT']} is not a number") from None
            found = await services.jobs.wait(caller, job_id, seconds, values.get("PHASE"))
        else:
            found = services.jobs.get(caller, job_id)
        return _job_xml(request, services, found)
    if request.method == "DELETE" or values.get("ACTION", "").upper() == "DELETE":
        await services.jobs.delete(caller, job_id)
        return RedirectResponse(f"{base_url(request)}/async", status_code=303)
    found = await _change(services, caller, job_id, values)
    return _to_job(request, found)


async def _change(
    services: TapServices, caller: Caller, job_id: str, values: dict[str, str]
) -> Job:
    """Apply PHASE, EXECUTIONDURATION, DESTRUCTION and query parameters posted to a job."""
    found = services.jobs.get(caller, job_id)
    other = {k: v for k, v in values.items() if k not in ("PHASE", "EXECUTIONDURATION",
                                                          "DESTRUCTION", "ACTION")}  # fmt: skip
    if other:
        found = services.jobs.set_parameters(caller, job_id, other)
    if "EXECUTIONDURATION" in values:
        found = services.jobs.set_execution_duration(caller, job_id, values["EXECUTIONDURATION"])
    if "DESTRUCTION" in values:
        found = services.jobs.set_destruction(caller, job_id, values["DESTRUCTION"])
    if "PHASE" in values:
        phase = values["PHASE"].upper()
        if phase == "RUN":
            found = await services.jobs.run(caller, job_id)
        elif phase == "ABORT":
            found = await services.jobs.abort(caller, job_id)
        else:
            raise TapParameterError(f"PHASE={values['PHASE']} cannot be set: use RUN or ABORT")
    return found


async def phase(request: Request) -> Response:
    """GET: the phase as text; POST PHASE=RUN|ABORT."""
    services, caller, params = await _context(request)
    job_id = request.path_params["job_id"]
    if request.method == "GET":
        return Response(services.jobs.get(caller, job_id).phase.value, media_type=_TEXT)
    if "PHASE" not in params.values:
        raise TapParameterError("POST PHASE=RUN or PHASE=ABORT to change a job's phase")
    return _to_job(request, await _change(services, caller, job_id,
                                          {"PHASE": params.values["PHASE"]}))  # fmt: skip


async def attribute(request: Request) -> Response:
    """executionduration, destruction, quote, owner, runid: GET as text; POST the first two."""
    services, caller, params = await _context(request)
    job_id = request.path_params["job_id"]
    name = request.url.path.rsplit("/", 1)[1].lower()
    if request.method == "POST" and name in ("executionduration", "destruction"):
        key = name.upper()
        if key not in params.values:
            raise TapParameterError(f"POST {key}=<value> to change it")
        return _to_job(request, await _change(services, caller, job_id,
                                              {key: params.values[key]}))  # fmt: skip
    found = services.jobs.get(caller, job_id)
    text = {
        "executionduration": str(int(found.execution_duration)),
        "destruction": uws.iso(found.destruction),
        "quote": "",
        "owner": found.owner.name or "",
        "runid": found.run_id or "",
    }[name]
    return Response(text, media_type=_TEXT)


async def error(request: Request) -> Response:
    """The error of a job in ERROR, as a VOTable with QUERY_STATUS=ERROR."""
    services, caller, _ = await _context(request)
    found = services.jobs.get(caller, request.path_params["job_id"])
    if found.phase != Phase.ERROR or not found.error:
        raise JobNotFoundError(f"job {found.id} has no error: it is {found.phase.value}")
    return Response(error_votable(found.error), media_type="application/x-votable+xml")


async def parameters_list(request: Request) -> Response:
    """GET: the job's parameters; POST: change them while PENDING."""
    services, caller, params = await _context(request)
    job_id = request.path_params["job_id"]
    if request.method == "POST":
        return _to_job(request, await _change(services, caller, job_id, params.values))
    return Response(uws.parameters_document(services.jobs.get(caller, job_id)), media_type=_XML)


async def results(request: Request) -> Response:
    """The list of the job's results (one, ``result``, once COMPLETED)."""
    services, caller, _ = await _context(request)
    found = services.jobs.get(caller, request.path_params["job_id"])
    size = services.jobs.result_size(found)
    return Response(uws.results_document(found, base_url(request), size), media_type=_XML)


async def result(request: Request) -> Response:
    """The result document of a COMPLETED job, in the format it asked for."""
    services, caller, _ = await _context(request)
    found, data = await asyncio.to_thread(services.jobs.result, caller,
                                          request.path_params["job_id"])  # fmt: skip
    return Response(data, media_type=found.result_mime or "application/octet-stream")
