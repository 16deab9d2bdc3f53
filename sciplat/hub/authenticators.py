"""The local password authenticator: the hub-side of IdentityService.authenticate."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Any as AnyTrait

from sciplat.errors import AuthError, ThrottledError


class SciplatLocalAuthenticator(Authenticator):  # type: ignore[misc]
    """Checks passwords against the platform's users (argon2id), with lockout."""

    identity = AnyTrait(help="The IdentityService; set by the hub configuration.").tag(config=True)

    async def authenticate(
        self, handler: web.RequestHandler, data: dict[str, str]
    ) -> dict[str, Any] | None:
        name = (data.get("username") or "").strip().lower()
        try:
            user = await asyncio.to_thread(
                self.identity.authenticate, name, data.get("password") or ""
            )
        except ThrottledError as err:
            exc = web.HTTPError(429, reason="Too many failed logins", log_message=err.message)
            # JupyterHub's error page copies an exception's ``headers`` onto the response
            exc.headers = {"Retry-After": str(err.retry_after)}  # type: ignore[attr-defined]
            raise exc from err
        except AuthError:
            self.log.warning("failed login for %r from %s", name, handler.request.remote_ip)
            return None
        return {"name": user.name, "admin": user.admin, "groups": user.group_names}
