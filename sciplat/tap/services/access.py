"""Who is calling, and which tables they may read. The only place these rules live."""

from __future__ import annotations

from sciplat.tap.config import TapConfig
from sciplat.tap.errors import TapAuthError, TapForbiddenError
from sciplat.tap.models.catalogue import TableInfo
from sciplat.tap.models.query import Caller
from sciplat.tap.storage.hub import HubClient

ANONYMOUS = Caller()


class AccessService:
    """Turns an ``Authorization`` header into a :class:`Caller` and decides table access."""

    def __init__(self, config: TapConfig, hub: HubClient | None) -> None:
        self.config = config
        self.hub = hub
        self.public = {s.lower() for s in config.public_schemas} | {"tap_schema"}

    async def caller(self, authorization: str | None) -> Caller:
        """The caller behind a header (``Bearer <token>`` or ``token <token>``), or anonymous.

        Raises:
            TapAuthError: a bad token, or no token where anonymous access is off.
            TapForbiddenError: a valid token without the required scope.
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
        return Caller(owner.name, owner.groups, owner.scopes)

    def may_read(self, caller: Caller, table: TableInfo) -> bool:
        """Anonymous callers read public schemas; hub users read everything."""
        return not caller.anonymous or table.schema.lower() in self.public
