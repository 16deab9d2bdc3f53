"""``python -m sciplat.jobs``: the notebook jobs service, as the hub starts it (a managed
service).

Reads the platform config in the data directory (``--data-dir``, default ``$SCIPLAT_DATA_DIR``
or ``./data``) and serves on 127.0.0.1:<services.jobs.port>. Job records and results persist
in ``<data>/jobs.sqlite`` and the users' homes, so a restarted service carries on.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from sciplat.factory import Factory
from sciplat.jobs.app import create_app
from sciplat.jobs.wiring import build_jobs
from sciplat.paths import default_data_dir


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m sciplat.jobs")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    factory = Factory.from_data_dir(args.data_dir or default_data_dir())
    services = build_jobs(factory)
    uvicorn.run(
        create_app(services),
        host=args.bind,
        port=args.port or services.config.port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
