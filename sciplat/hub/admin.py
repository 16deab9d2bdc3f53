"""The platform page for admins (/hub/sciplat/admin): users, running labs with environment,
size, age and what each uses (from its cgroup) against its limits."""

from __future__ import annotations

from typing import Any

from jupyterhub.handlers import BaseHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from sciplat.hub.hubdb import labs_in
from sciplat.labs.services.status import human_age, lab_rows


class PlatformAdminHandler(BaseHandler):  # type: ignore[misc]
    """Renders ``sciplat_admin.html``; only for holders of the admin-ui scope."""

    def initialize(self, factory: Any) -> None:
        self.factory = factory

    @web.authenticated
    @needs_scope("admin-ui")  # type: ignore[untyped-decorator]
    async def get(self) -> None:
        factory = self.factory
        rows = lab_rows(factory.config, factory.lab_backend, labs_in(self.db))
        html = await self.render_template(
            "sciplat_admin.html",
            users=factory.identity.list_users(),
            rows=rows,
            sizes=factory.config.sizes,
            warning=factory.isolation_warning(),
            human_age=human_age,
        )
        self.finish(html)
