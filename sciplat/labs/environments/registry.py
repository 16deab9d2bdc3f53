"""Environments registered with `sciplat env build NAME --from FILE`, kept beside the config in
``<data>/environments.yaml`` and merged into the configuration's list when it is loaded (the
config's own entries win on a name). Editing the operator's sciplat.yaml by program would lose
its comments; this file is the platform's to write."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from sciplat.config import Config, EnvironmentConfig
from sciplat.errors import ConfigError


def load(path: Path) -> list[EnvironmentConfig]:
    """The registered environments (none if the file does not exist).

    Raises:
        ConfigError: the file is not a list of valid environments.
    """
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text()) or []
        return [EnvironmentConfig.model_validate(item) for item in data]
    except (yaml.YAMLError, ValidationError, TypeError) as exc:
        raise ConfigError(f"{path}: not a list of environments ({exc}); fix or remove it") from exc


def save(path: Path, environments: list[EnvironmentConfig]) -> None:
    """Write the registry atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        "# Environments registered by `sciplat env build`; merged into sciplat.yaml's list.\n"
        + yaml.safe_dump([e.model_dump(mode="json") for e in environments], sort_keys=False)
    )
    tmp.replace(path)


def register(path: Path, environment: EnvironmentConfig) -> None:
    """Add or replace ``environment`` in the registry."""
    kept = [e for e in load(path) if e.name != environment.name]
    save(path, [*kept, environment])


def merged(config: Config, registered: list[EnvironmentConfig]) -> Config:
    """``config`` with the registered environments it does not define itself.

    Raises:
        ConfigError: the merged list breaks a rule (e.g. two recommended environments).
    """
    own = {e.name for e in config.environments}
    extra = [e for e in registered if e.name not in own]
    if not extra:
        return config
    try:
        return Config.model_validate(
            {**config.model_dump(), "environments": [*config.environments, *extra]}
        )
    except ValidationError as exc:
        raise ConfigError(
            f"the registered environments do not fit the configuration: {exc}"
        ) from exc
