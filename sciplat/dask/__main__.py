"""``python -m sciplat.dask``: the Dask service (dask-gateway-server), as the hub starts it.

Reads the platform config in the data directory (``--data-dir``, default
``$SCIPLAT_DATA_DIR`` or ``./data``); serves the gateway's HTTP proxy on
127.0.0.1:<services.dask.port> (the platform's proxy routes ``/api/dask`` there) and the
scheduler proxy on <scheduler_bind>:<scheduler_port>. Clusters persist in
``<data>/dask.sqlite`` and keep running while the service restarts.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sciplat.dask.app import create_gateway
from sciplat.dask.wiring import build_dask
from sciplat.factory import Factory
from sciplat.paths import default_data_dir, hub_api_url


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m sciplat.dask")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    factory = Factory.from_data_dir(args.data_dir or default_data_dir())
    services = build_dask(factory)
    hub = hub_api_url(services.config.hub_api_url, factory.config.hub.hub_port)
    create_gateway(services, hub).start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
