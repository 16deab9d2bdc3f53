"""Who is calling, and which tables they may read. The only place these rules live."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sciplat.errors import SciplatError, ThrottledError
from sciplat.tap.config import TapConfig
from sciplat.tap.errors import TapAuthError, TapForbiddenError, TapQuotaError, TapThrottledError
from sciplat.tap.models.catalogue import TableInfo
from sciplat.tap.models.query import Caller
from sciplat.tap.storage.hub import HubClient

#: Counts one request of (user, groups) against their api_rate; raises ThrottledError or
#: another SciplatError (set by whoever runs the service, from the platform's quotas).
RateCheck = Callable[[str, Iterable[str]], None]
#: (query_rows, query_seconds) of (user, groups); None where unlimited.
QueryLimits = Callable[[str, Iterable[str]], tuple[int | None, float | None]]

ANONYMOUS = Caller()


class AccessService:
    """Turns an ``Authorization`` header into a :class:`Caller` and decides table access."""

    def __init__(
        self,
        config: TapConfig,
        hub: HubClient | None,
        rate_check: RateCheck | None = None,
        query_limits: QueryLimits | None = None,
    ) -> None:
        self.config = config
        self.hub = hub
        self.rate_check = rate_check
        self.query_limits = query_limits
        self.public = {s.lower() for s in config.public_schemas} | {"tap_schema"}

    async def caller(self, authorization: str | None) -> Caller:
        """The caller behind a header (``Bearer <token>`` or ``token <token>``), or anonymous.

        Raises:
            TapAuthError: a bad token, or no token where anonymous access is off.
            TapForbiddenError: a valid token without the required scope.
            TapThrottledError: the caller is over their ``api_rate`` quota.
            TapQuotaError: the caller's ``api_rate`` is 0.
        """
        if not authorization:
            if not self.config.anonymous:
                raise TapAuthError(
                    "this service needs a JupyterHub API token: send 'Authorization: Bearer "
                    "<token>' (make one on the hub's Token page)"
                )
            return ANONYMOUS
        kind, _, token = authorization.strip().partition(" ")
        if kind.lower() not in ("bearer", "token") or not token.strip():
            raise TapAuthError("send the token as 'Authorization: Bearer <token>'")
        if self.hub is None:
            raise TapAuthError("tokens cannot be checked: the service has no hub configured")
        owner = await self.hub.owner(token.strip())
        needed = self.config.required_scope
        if needed and not ({needed, "access:services"} & owner.scopes):
            raise TapForbiddenError(
                f"the token of {owner.name} lacks the scope {needed}: make a token with it"
            )
        if self.rate_check is not None:
            try:
                self.rate_check(owner.name, owner.groups)
            except ThrottledError as err:
                raise TapThrottledError(err.message, err.retry_after) from err
            except SciplatError as err:
                raise TapQuotaError(err.message) from err
        rows, seconds = (
            self.query_limits(owner.name, owner.groups) if self.query_limits else (None, None)
        )
        if rows == 0 or seconds == 0:
            raise TapQuotaError(
                f"{owner.name} may not run queries here (quota query_rows or query_seconds is "
                "0); ask an administrator for access"
            )
        return Caller(owner.name, owner.groups, owner.scopes, rows, seconds)

    def may_read(self, caller: Caller, table: TableInfo) -> bool:
        """Anonymous callers read public schemas; hub users read everything."""
        return not caller.anonymous or table.schema.lower() in self.public

    def may_read_user_table(self, caller: Caller, owner: str, shared_with: Iterable[str]) -> bool:
        """A user table (MyDB) is read by its owner and the members of the groups it is shared
        with; by nobody else, anonymous callers included."""
        if caller.name is None:
            return False
        return caller.name == owner or not caller.groups.isdisjoint(shared_with)

    def owns(self, caller: Caller, owner: str) -> bool:
        """Only a user table's owner writes, replaces, shares or drops it."""
        return caller.name is not None and caller.name == owner

    def may_share_with(self, caller: Caller, group: str) -> bool:
        """Users share their tables only with groups they are in (a typo shares with nobody
        instead of a stranger); operators share with any group through the CLI."""
        return group in caller.groups
