"""Who is calling: a JupyterHub API token into a :class:`Caller`, checked against the hub
(the TAP service's hub client, one copy), the service's scope and the caller's ``api_rate``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sciplat.errors import SciplatError, ThrottledError
from sciplat.jobs.errors import JobsAuthError, JobsForbiddenError
from sciplat.tap.storage.hub import HubClient

#: Counts one request of (user, groups) against their api_rate; raises ThrottledError (429)
#: or QuotaExceededError (403).
RateCheck = Callable[[str, Iterable[str]], None]


@dataclass(frozen=True)
class Caller:
    name: str
    groups: frozenset[str]


class JobsAccess:
    """Turns an ``Authorization`` header into a :class:`Caller`."""

    def __init__(
        self, hub: HubClient, required_scope: str, rate_check: RateCheck | None = None
    ) -> None:
        self.hub = hub
        self.required_scope = required_scope
        self.rate_check = rate_check

    async def caller(self, authorization: str | None) -> Caller:
        """The token's owner.

        Raises:
            JobsAuthError: no token, or one the hub does not know.
            JobsForbiddenError: a token without the service's scope.
            ThrottledError: over the caller's ``api_rate`` (429, Retry-After).
            QuotaExceededError: the caller's ``api_rate`` is 0.
        """
        kind, _, token = (authorization or "").strip().partition(" ")
        if kind.lower() not in ("bearer", "token") or not token.strip():
            raise JobsAuthError(
                "this service needs a JupyterHub API token: send 'Authorization: Bearer "
                "<token>' (make one on the hub's Token page, or use $JUPYTERHUB_API_TOKEN in a lab)"
            )
        try:
            owner = await self.hub.owner(token.strip())
        except ThrottledError:
            raise
        except SciplatError as err:
            raise JobsAuthError(err.message) from err
        needed = self.required_scope
        if needed and not ({needed, "access:services"} & owner.scopes):
            raise JobsForbiddenError(
                f"the token of {owner.name} lacks the scope {needed}: make a token with it"
            )
        if self.rate_check is not None:
            self.rate_check(owner.name, owner.groups)
        return Caller(owner.name, owner.groups)
