"""UWS 1.1 documents (job, job list) as XML text: pure functions.

Element order and nillable elements follow the UWS 1.1 schema
(namespace ``http://www.ivoa.net/xml/UWS/v1.0``, ``version="1.1"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from sciplat.tap.models.job import Job

_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_NS = (
    'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1"'
)


def iso(value: datetime | None) -> str:
    """UWS time: ISO 8601 in UTC to the second, with Z (empty for None)."""
    if value is None:
        return ""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _element(tag: str, value: str | None) -> str:
    if value is None or value == "":
        return f'<uws:{tag} xsi:nil="true"/>'
    return f"<uws:{tag}>{escape(value)}</uws:{tag}>"


def job_document(job: Job, base_url: str, result_size: int | None) -> str:
    """The job resource ``/async/<id>``; ``base_url`` is the service's (without /async)."""
    params = _parameters(job)
    results = _result(job, base_url, result_size)
    error = ""
    if job.error:
        error = (
            '<uws:errorSummary type="fatal" hasDetail="true">'
            f"<uws:message>{escape(job.error)}</uws:message></uws:errorSummary>\n"
        )
    run_id = f"{_element('runId', job.run_id)}\n" if job.run_id else ""
    return (
        f"{_HEAD}<uws:job {_NS}>\n"
        f"{_element('jobId', job.id)}\n{run_id}"
        f"{_element('ownerId', job.owner.name)}\n"
        f"{_element('phase', job.phase.value)}\n"
        f"{_element('quote', None)}\n"
        f"{_element('creationTime', iso(job.created))}\n"
        f"{_element('startTime', iso(job.started))}\n"
        f"{_element('endTime', iso(job.ended))}\n"
        f"{_element('executionDuration', str(int(job.execution_duration)))}\n"
        f"{_element('destruction', iso(job.destruction))}\n"
        f"<uws:parameters>{params}</uws:parameters>\n"
        f"<uws:results>{results}</uws:results>\n"
        f"{error}</uws:job>\n"
    )


def job_list(jobs: Iterable[Job], base_url: str) -> str:
    """The job list ``/async``."""
    refs = "".join(
        f'<uws:jobref id={quoteattr(job.id)} xlink:type="simple" '
        f"xlink:href={quoteattr(f'{base_url}/async/{job.id}')}>"
        f"{_element('phase', job.phase.value)}"
        + (_element("runId", job.run_id) if job.run_id else "")
        + f"{_element('ownerId', job.owner.name)}"
        f"{_element('creationTime', iso(job.created))}</uws:jobref>\n"
        for job in jobs
    )
    return f"{_HEAD}<uws:jobs {_NS}>\n{refs}</uws:jobs>\n"


def _parameters(job: Job) -> str:
    return "".join(
        f"<uws:parameter id={quoteattr(name.lower())}>{escape(value)}</uws:parameter>"
        for name, value in sorted(job.parameters.items())
    )


def _result(job: Job, base_url: str, result_size: int | None) -> str:
    if result_size is None:
        return ""
    href = f"{base_url}/async/{job.id}/results/result"
    return (
        f'<uws:result id="result" xlink:type="simple" xlink:href={quoteattr(href)} '
        f'mime-type={quoteattr(job.result_mime or "")} size="{result_size}"/>'
    )


def parameters_document(job: Job) -> str:
    """``/async/<id>/parameters``."""
    return f"{_HEAD}<uws:parameters {_NS}>{_parameters(job)}</uws:parameters>\n"


def results_document(job: Job, base_url: str, result_size: int | None) -> str:
    """``/async/<id>/results``."""
    return f"{_HEAD}<uws:results {_NS}>{_result(job, base_url, result_size)}</uws:results>\n"
