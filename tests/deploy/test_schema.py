"""values.schema.json is generated from the values model (and so from the config model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sciplat.configbase import parse_bytes
from sciplat.deploy.schema import SCHEMA_FILE, SIZE_PATTERN, values_schema, values_schema_text
from sciplat.deploy.values import ChartValues
from tests.deploy.conftest import CHART, VALUES_1000


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text() == values_schema_text(), (
        "deploy/helm/sciplat/values.schema.json is stale: run "
        "`.venv/bin/python -m sciplat.deploy.schema --write`"
    )


def test_config_key_is_the_config_model() -> None:
    schema = values_schema()
    assert schema["properties"]["config"]["$ref"] == "#/$defs/Config"
    config = schema["$defs"]["Config"]
    assert config["additionalProperties"] is False
    assert {"auth", "quotas", "sizes", "volumes", "services"} <= set(config["properties"])


@pytest.mark.parametrize(
    "text",
    ["4GiB", "512MiB", "2G", "1.5g", "10 TiB", "100", "7k", "3mib", " 8 GiB ", "lots", "4 GB B",
     "GiB", "-1G", "4PiB", "1e3", "4GiBs", ""],
)  # fmt: skip
def test_size_pattern_accepts_what_parse_bytes_accepts(text: str) -> None:
    try:
        parse_bytes(text)
        accepted = True
    except ValueError:
        accepted = False
    # JSON Schema patterns are ECMA-262; for this pattern Python's re reads them the same way
    assert (re.search(SIZE_PATTERN, text) is not None) == accepted


@pytest.mark.parametrize("path", [CHART / "values.yaml", VALUES_1000], ids=lambda p: p.name)
def test_values_files_are_valid_for_the_model(path: Path) -> None:
    values = ChartValues.model_validate(yaml.safe_load(path.read_text()))
    assert values.hub.database.urlSecret.key


def test_the_ci_site_has_1000_users() -> None:
    config = ChartValues.model_validate(yaml.safe_load(VALUES_1000.read_text())).config
    users = {member for group in config.groups for member in group.members}
    assert len(users) == 1000
    assert set(config.quotas.users) <= users
    assert set(config.quotas.groups) == {group.name for group in config.groups}


def test_values_yaml_spells_out_every_chart_default() -> None:
    """Helm applies values.yaml's defaults, never the model's: a chart key whose model default
    matters must be written in values.yaml, or templates see it empty."""
    raw = yaml.safe_load((CHART / "values.yaml").read_text())
    model = ChartValues.model_validate(raw).model_dump(by_alias=True, exclude={"config"})

    def missing(defaults: object, written: object, path: str) -> list[str]:
        if isinstance(defaults, dict):
            if not isinstance(written, dict):
                return [path] if any(v not in (None, {}, []) for v in defaults.values()) else []
            return [gap for key, value in defaults.items()
                    for gap in missing(value, written.get(key), f"{path}.{key}")]  # fmt: skip
        return [path] if defaults not in (None, {}, []) and written is None else []

    assert missing(model, raw, "") == []
