"""Stopping every scheduler and worker from the gateway's database, without the gateway
(``sciplat down``: the service may already be gone, and it leaves clusters running on
purpose when it stops, so that a hub restart does not end them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

from sciplat.labs.backend import LabBackend
from sciplat.labs.models import LabState

STOPPED = 5  # dask_gateway_server.backends.db_base.JobStatus.STOPPED


def _states(db: sqlite3.Connection, table: str) -> list[LabState]:
    out = []
    for (raw,) in db.execute(f"SELECT state FROM {table} WHERE status < ?", (STOPPED,)):  # noqa: S608 - fixed names
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            lab = LabState.from_dict(json.loads(raw).get("lab") or {})
            if lab is not None:
                out.append(lab)
    return out


def stop_all(db_path: Path, labs: LabBackend) -> int:
    """Stop the processes of every cluster not recorded as stopped and record them so;
    returns how many processes were asked to stop."""
    if not db_path.exists():
        return 0
    db = sqlite3.connect(db_path)
    try:
        states = _states(db, "workers") + _states(db, "clusters")
        for state in states:
            asyncio.run(labs.stop(state, now=True))
        for table in ("workers", "clusters"):
            db.execute(f"UPDATE {table} SET status = ?, target = ? WHERE status < ?",  # noqa: S608
                       (STOPPED, STOPPED, STOPPED))  # fmt: skip
        db.commit()
    finally:
        db.close()
    return len(states)
