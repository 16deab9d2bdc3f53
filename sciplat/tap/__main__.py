"""``python -m sciplat.tap``: the TAP service, as the hub starts it (a managed service).

Reads ``services.tap`` from the platform config in the data directory (``--data-dir``, default
``$SCIPLAT_DATA_DIR`` or ``./data``), loads the demo catalogue when configured and none is
loaded, and serves on 127.0.0.1:<services.tap.port>. The hub sets ``$JUPYTERHUB_API_URL``,
which is where tokens are checked unless ``hub_api_url`` says otherwise.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from sciplat.paths import default_data_dir
from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig
from sciplat.tap.wiring import TapServices, build_tap


def build_services(data_dir: Path, config_json: str = "") -> tuple[TapServices, TapConfig]:
    """The service's objects: from ``config_json`` alone (tests, bench), else from the
    platform's factory, which adds the platform's quotas (``api_rate``).

    Raises:
        ConfigError: the platform config is missing or invalid.
        pydantic.ValidationError: ``config_json`` is not a valid TapConfig.
    """
    if config_json:
        config = TapConfig.model_validate_json(config_json)
        return build_tap(config, data_dir), config
    from sciplat.factory import Factory  # noqa: PLC0415 - only when run by the hub

    factory = Factory.from_data_dir(data_dir)
    return factory.tap, factory.config.services.tap


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m sciplat.tap")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--config-json", default="", help="a TapConfig as JSON (tests, bench)")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    services, config = build_services(data_dir, args.config_json)
    if config.demo_catalogue:
        services.catalogues.ensure_demo()
    uvicorn.run(
        create_app(services),
        host=args.bind,
        port=args.port or config.port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
