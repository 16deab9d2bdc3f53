"""The demo configuration ``sciplat up`` writes on first start."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

DEMO_TEMPLATE = """\
# sciplat configuration, written by `sciplat up` on first start ({today}).
# Every key is described in docs/operator-guide.md. Restart `sciplat up` after editing.
auth:
  provider: local          # local | github | cilogon | oidc
  admin_users: [admin]
groups:
  - name: demo
    description: Everybody who tries the demo
sizes:
  - {{name: small, cpu: 1, memory: 2GiB, pids: 1024, default: true}}
  - {{name: medium, cpu: 2, memory: 4GiB, pids: 2048}}
environments:
  - name: default
    display_name: Recommended (Python 3, JupyterLab 4, the scientific basics)
    kind: release
    created: {today}
    path: {root}/envs/default
    recommended: true
    requirements: [numpy, scipy, astropy, matplotlib, pandas, pyvo]
volumes:
  root: {root}
quotas:                    # what each user may use at once (docs/config-reference.md)
  default: {{dask_workers: 4, dask_cores: 4, dask_memory: 8GiB}}
culling:
  idle_timeout: 3600
  max_age: 0
hub:
  bind: 127.0.0.1
  port: 8000
"""


def default_storage_root(data_dir: Path) -> Path:
    """``$SCIPLAT_STORAGE_ROOT``, else /srv/sciplat as root (reachable by every user), else
    inside the data directory."""
    if os.environ.get("SCIPLAT_STORAGE_ROOT"):
        return Path(os.environ["SCIPLAT_STORAGE_ROOT"])
    return Path("/srv/sciplat") if os.geteuid() == 0 else data_dir / "storage"


def demo_config(data_dir: Path) -> str:
    return DEMO_TEMPLATE.format(today=dt.date.today().isoformat(),
                                root=default_storage_root(data_dir))  # fmt: skip
