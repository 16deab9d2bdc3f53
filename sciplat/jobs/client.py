"""A small client of the jobs service, for notebooks in a lab and for the ``sciplat`` command.

Inside a lab it needs no configuration: the token is the lab's own ``$JUPYTERHUB_API_TOKEN``
and the service's address comes from the hub (``GET $JUPYTERHUB_API_URL/services/jobs``, which
the lab's token may read). Standard library only, so the file also works copied into an
environment that lacks sciplat::

    from sciplat.jobs.client import JobsClient
    job = JobsClient().run("analysis.ipynb", parameters={"year": 2026})
    print(job["status"], job["result"], job["cached"])
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

FINISHED = ("done", "failed", "cancelled")


class JobsClientError(Exception):
    """The service refused a request (``status`` and its message) or cannot be found."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


class JobsClient:
    """Submit notebooks, follow them, fetch their results."""

    def __init__(self, url: str = "", token: str = "", timeout: float = 60.0) -> None:
        """``url`` is the service's base (``https://host/api/jobs``); ``token`` an API token.

        Raises:
            JobsClientError: no token, or no way to find the service.
        """
        self.token = (
            token or os.environ.get("SCIPLAT_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        )
        if not self.token:
            raise JobsClientError(
                "no API token: pass token=, or set $SCIPLAT_TOKEN (a lab has "
                "$JUPYTERHUB_API_TOKEN already)"
            )
        self.timeout = timeout
        self.url = (url or os.environ.get("SCIPLAT_JOBS_URL") or self._discover()).rstrip("/")

    def _discover(self) -> str:
        hub = os.environ.get("JUPYTERHUB_API_URL", "")
        if not hub:
            raise JobsClientError(
                "cannot find the jobs service: pass url= or set $SCIPLAT_JOBS_URL (inside a "
                "lab it is found through the hub)"
            )
        service = self._call("GET", f"{hub.rstrip('/')}/services/jobs")
        info = service.get("info") or {}
        base = info.get("url") or f"{service.get('url', '').rstrip('/')}/api/jobs"
        return str(base)

    def _call(self, method: str, url: str, body: Any = None, raw: bool = False) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            try:
                detail = json.loads(text)
                message, code = detail.get("message", text), detail.get("error", "")
            except ValueError:
                message, code = text[:300] or err.reason, ""
            raise JobsClientError(f"{message} (HTTP {err.code})", err.code, code) from err
        except urllib.error.URLError as err:
            raise JobsClientError(f"cannot reach {url}: {err.reason}") from err
        if raw:
            return payload
        return json.loads(payload) if payload else None

    # -- the API --------------------------------------------------------------------------------
    def submit(
        self,
        path: str = "",
        notebook: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        environment: str = "",
        size: str = "",
        timeout: float | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Submit a notebook (a path in your home, or the document); returns the job, which is
        finished already when the result came from the cache (``job["cached"]``).

        Raises:
            JobsClientError: the service refused it (the message says why).
        """
        body: dict[str, Any] = {"parameters": parameters or {}, "force": force}
        body.update({k: v for k, v in (("path", path), ("notebook", notebook),
                                       ("environment", environment), ("size", size),
                                       ("timeout", timeout)) if v})  # fmt: skip
        return dict(self._call("POST", self.url, body))

    def status(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"{self.url}/{job_id}"))

    def wait(self, job_id: str, timeout: float = 3600, interval: float = 0.2) -> dict[str, Any]:
        """The job once it has finished (done, failed or cancelled).

        Raises:
            JobsClientError: still running after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            job = self.status(job_id)
            if job["status"] in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise JobsClientError(f"job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(interval)

    def run(self, path: str = "", **kwargs: Any) -> dict[str, Any]:
        """Submit and wait; the finished job."""
        job = self.submit(path, **kwargs)
        return job if job["status"] in FINISHED else self.wait(job["id"])

    def notebook(self, job_id: str) -> dict[str, Any]:
        """The executed notebook (JSON)."""
        return dict(self._call("GET", f"{self.url}/{job_id}/notebook"))

    def html(self, job_id: str) -> str:
        return bytes(self._call("GET", f"{self.url}/{job_id}/html", raw=True)).decode()

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"{self.url}/{job_id}"))

    def jobs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", self.url)["jobs"])

    def cache(self) -> list[dict[str, Any]]:
        """Your stored results (they count against your storage)."""
        return list(self._call("GET", f"{self.url}/cache")["entries"])

    def drop(self, key: str) -> None:
        """Delete a stored result."""
        self._call("DELETE", f"{self.url}/cache/{key}")
