"""A base for long-lived services built once by the factory."""

from __future__ import annotations

from typing import Any


class Shared:
    """Copying a service would split its state: traitlets deep-copies config values, so a
    service handed to JupyterHub's config must come back as itself."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Shared:
        return self
