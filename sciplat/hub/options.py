"""The spawn page's options form, rendered from the lab service's menu."""

from __future__ import annotations

from pathlib import Path

import jinja2

from sciplat.identity.models import User
from sciplat.labs.services.labs import DROPDOWN, LabService

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
)


def render_options_form(labs: LabService, user: User, notice: str = "") -> str:
    """HTML for the spawn page: environments (menu order), sizes within quota, reset, and a
    ``notice`` about how the last lab ended."""
    sizes = labs.sizes_for(user)
    allowed = {s.name for s in sizes}
    default = labs.config.default_size().name
    return _TEMPLATES.get_template("sciplat_options.html").render(
        menu=labs.menu(),
        notice=notice,
        dropdown=DROPDOWN,
        sizes=sizes,
        default_size=default if default in allowed else (sizes[0].name if sizes else ""),
        hidden_sizes=[s.name for s in labs.config.sizes if s.name not in allowed],
    )
