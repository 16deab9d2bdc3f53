"""Errors of the jobs service; ``app.py`` turns each into a JSON answer in one place."""

from __future__ import annotations

from sciplat.errors import SciplatError


class JobsError(SciplatError):
    """Base of every jobs error a caller sees."""

    code = "jobs_error"
    status_code = 400


class JobRequestError(JobsError):
    """A bad submission: no notebook, an unreadable path, an unknown environment or size."""

    code = "bad_request"


class JobsAuthError(JobsError):
    """No token, or one the hub does not know."""

    code = "unauthorized"
    status_code = 401


class JobsForbiddenError(JobsError):
    """A valid token without the service's scope."""

    code = "forbidden"
    status_code = 403


class JobNotFoundError(JobsError):
    """No such job of this caller (other users' jobs are not found either)."""

    code = "not_found"
    status_code = 404


class JobStateError(JobsError):
    """The job is not in a state that allows this (e.g. its notebook before it finished)."""

    code = "conflict"
    status_code = 409
