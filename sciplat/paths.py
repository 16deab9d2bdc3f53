"""The data directory's layout: one place that knows where each file lives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def hub_api_url(configured: str, hub_port: int) -> str:
    """Where a platform service reaches the hub's REST API: ``configured`` (its
    ``hub_api_url``), else ``$JUPYTERHUB_API_URL`` (set for hub-managed services), else the
    local hub on ``hub_port``."""
    return (
        configured
        or os.environ.get("JUPYTERHUB_API_URL", "")
        or f"http://127.0.0.1:{hub_port}/hub/api"
    )


def default_data_dir() -> Path:
    """``$SCIPLAT_DATA_DIR``, else ``./data`` (what ``make up`` uses in the checkout)."""
    return Path(os.environ.get("SCIPLAT_DATA_DIR") or "data").absolute()


@dataclass(frozen=True)
class DataDir:
    """Files of one platform instance under its data directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "sciplat.yaml"

    @property
    def state_db(self) -> Path:
        return self.root / "state.sqlite"

    @property
    def hub_db(self) -> Path:
        return self.root / "jupyterhub.sqlite"

    @property
    def jobs_db(self) -> Path:
        """Notebook jobs' records and result cache (the jobs service, `sciplat down`)."""
        return self.root / "jobs.sqlite"

    @property
    def dask_db(self) -> Path:
        """dask-gateway's clusters and workers (the Dask service, `sciplat down`)."""
        return self.root / "dask.sqlite"

    @property
    def environments(self) -> Path:
        """Environments registered by `sciplat env build` (merged into the config's)."""
        return self.root / "environments.yaml"

    @property
    def run(self) -> Path:
        """Pid files, the proxy token and the hub's cookie secret."""
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def proxy_token(self) -> Path:
        return self.run / "proxy-auth-token"

    @property
    def cookie_secret(self) -> Path:
        return self.run / "jupyterhub_cookie_secret"

    @property
    def reload_marker(self) -> Path:
        """Written by the supervisor when a reload finished: ``ok`` or ``error: ...``."""
        return self.run / "reloaded"

    def pid_file(self, process: str) -> Path:
        return self.run / f"{process}.pid"

    def lab_log(self, user: str, server: str = "") -> Path:
        return self.logs / "labs" / (f"{user}.log" if not server else f"{user}--{server}.log")

    def ensure(self) -> None:
        """Create the directories (private to the platform's own account)."""
        for d in (self.root, self.run, self.logs, self.logs / "labs"):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
