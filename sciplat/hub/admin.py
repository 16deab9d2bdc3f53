"""The platform page for admins (/hub/sciplat/admin): users, running labs with environment,
size, age and what each uses (from its cgroup) against its limits."""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from sciplat.errors import NotFoundError
from sciplat.hub.hubdb import labs_in
from sciplat.labs.services.status import human_age, lab_rows
from sciplat.quotas.models import format_amount
from sciplat.quotas.services.usage import labs_by_user


class PlatformAdminHandler(BaseHandler):  # type: ignore[misc]
    """Renders ``sciplat_admin.html``; only for holders of the admin-ui scope."""

    def initialize(self, factory: Any) -> None:
        self.factory = factory

    @web.authenticated
    @needs_scope("admin-ui")  # type: ignore[untyped-decorator]
    async def get(self) -> None:
        factory = self.factory
        labs = labs_in(self.db)
        users = factory.identity.list_users()
        running = labs_by_user(labs, factory.config)
        reports = [factory.quotas.report(u, running.get(u.name, [])) for u in users]
        html = await self.render_template(
            "sciplat_admin.html",
            users=users,
            rows=lab_rows(factory.config, factory.lab_backend, labs),
            reports=reports,
            quota_keys=("labs", "cores", "memory", "storage"),
            amount=format_amount,
            sizes=factory.config.sizes,
            warning=factory.isolation_warning(),
            human_age=human_age,
        )
        self.finish(html)


class QuotaApiHandler(APIHandler):  # type: ignore[misc]
    """``GET /hub/sciplat/api/quotas[/<user>]``: effective limits, their sources and current
    use as JSON (the data of `sciplat quota show`), for admins only."""

    def initialize(self, factory: Any) -> None:
        self.factory = factory

    @needs_scope("admin:users")  # type: ignore[untyped-decorator]
    async def get(self, name: str = "") -> None:
        factory = self.factory
        running = labs_by_user(labs_in(self.db), factory.config)
        if name:
            try:
                users = [factory.identity.get_user(name)]
            except NotFoundError as err:
                raise web.HTTPError(404, err.message) from err
        else:
            users = factory.identity.list_users()
        reports = [factory.quotas.report(u, running.get(u.name, [])).to_dict() for u in users]
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(reports[0] if name else reports))
