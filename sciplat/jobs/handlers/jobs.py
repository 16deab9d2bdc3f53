"""HTTP handlers of ``/api/jobs``: parse, call the job service once, answer JSON."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from sciplat.jobs.errors import JobRequestError
from sciplat.jobs.models.job import JobRequest
from sciplat.jobs.services.access import Caller
from sciplat.jobs.services.notebooks import render_html
from sciplat.jobs.wiring import JobsServices


def _services(request: Request) -> JobsServices:
    services: JobsServices = request.app.state.jobs
    return services


async def _caller(request: Request) -> Caller:
    return await _services(request).access.caller(request.headers.get("authorization"))


async def submit(request: Request) -> Response:
    """``POST /``: a JobRequest as JSON; 200 with a cached result, else 201 (queued)."""
    caller = await _caller(request)
    try:
        body: Any = await request.json()
        job_request = JobRequest.model_validate(body)
    except ValueError as exc:
        detail = (
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            if isinstance(exc, ValidationError)
            else "the body is not JSON"
        )
        raise JobRequestError(f"bad job request: {detail}") from exc
    job = _services(request).jobs.submit(caller, job_request)
    return JSONResponse(job.view(), 200 if job.cached else 201)


async def listing(request: Request) -> Response:
    """``GET /``: the caller's jobs, newest first (``?limit=N``, at most 1000)."""
    caller = await _caller(request)
    try:
        limit = max(1, min(int(request.query_params.get("limit", "100")), 1000))
    except ValueError as exc:
        raise JobRequestError("limit must be a number") from exc
    jobs = _services(request).jobs.list_jobs(caller, limit)
    return JSONResponse({"jobs": [j.view() for j in jobs]})


async def status(request: Request) -> Response:
    """``GET /{id}``: one job with its progress."""
    caller = await _caller(request)
    return JSONResponse(_services(request).jobs.get(caller, request.path_params["id"]).view())


async def cancel(request: Request) -> Response:
    """``DELETE /{id}``: cancel (a finished job is returned as it is)."""
    caller = await _caller(request)
    job = await _services(request).jobs.cancel(caller, request.path_params["id"])
    return JSONResponse(job.view(), 202)


async def notebook(request: Request) -> Response:
    """``GET /{id}/notebook``: the executed notebook (ipynb)."""
    caller = await _caller(request)
    data = _services(request).jobs.result(caller, request.path_params["id"])
    return Response(data, media_type="application/x-ipynb+json")


async def html(request: Request) -> Response:
    """``GET /{id}/html``: the executed notebook rendered as an HTML page."""
    caller = await _caller(request)
    data = _services(request).jobs.result(caller, request.path_params["id"])
    return HTMLResponse(render_html(data))


async def cache_list(request: Request) -> Response:
    """``GET /cache``: the caller's stored results and their sizes."""
    caller = await _caller(request)
    return JSONResponse({"entries": _services(request).jobs.cache_entries(caller)})


async def cache_drop(request: Request) -> Response:
    """``DELETE /cache/{key}``: forget a stored result and delete its files."""
    caller = await _caller(request)
    _services(request).jobs.cache_drop(caller, request.path_params["key"])
    return Response(status_code=204)
