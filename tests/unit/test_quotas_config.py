"""The ``quotas`` section of sciplat.yaml: keys, sizes, zero, names, descriptions."""

from __future__ import annotations

import pytest

from sciplat.config import QuotaLimits, QuotasConfig, parse_config
from sciplat.errors import ConfigError

DOC = """\
quotas:
  default:
    labs: 1
    cores: 2
    memory: 8GiB
    storage: 10GiB
    api_rate: 600
  groups:
    astro:
      cores: 8
      group_storage: 1TiB
      query_seconds: 0.5
  users:
    alice:
      storage: 200GiB
      jobs: 0
"""


def test_document_parses_sizes_and_numbers():
    quotas = parse_config(DOC).quotas
    assert quotas.default.labs == 1
    assert quotas.default.cores == 2.0
    assert quotas.default.memory == 8 * 1024**3
    assert quotas.default.storage == 10 * 1024**3
    assert quotas.groups["astro"].group_storage == 1024**4
    assert quotas.groups["astro"].query_seconds == 0.5
    assert quotas.users["alice"].storage == 200 * 1024**3
    assert quotas.users["alice"].jobs == 0


def test_absent_and_null_keys_are_none():
    quotas = parse_config("quotas:\n  default: {storage: null, memory: 1G}\n").quotas
    assert quotas.default.storage is None
    assert quotas.default.labs is None
    assert quotas.default.memory == 10**9
    assert parse_config("").quotas == QuotasConfig()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quotas: {default: {memory: lots}}", "quotas.default.memory = 'lots': 'lots' is not"),
        ("quotas: {default: {cores: -1}}", "quotas.default.cores = -1: Input should be greater"),
        ("quotas: {default: {gpus: 1}}", "quotas.default.gpus = 1: unknown key"),
        ("quotas: {users: {Alice: {}}}", "quotas.users: not a valid user or group name: Alice"),
        ("quotas: {groups: {astro: {storage: -5}}}", "quotas.groups.astro.storage = -5"),
    ],
)
def test_bad_values_name_the_key(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site.yaml")
    assert f"site.yaml:1: {expected}" in info.value.message


def test_every_quota_field_has_a_description_and_an_example():
    for model in (QuotaLimits, QuotasConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert field.examples, f"{model.__name__}.{name} has no example"


def test_docstring_says_how_overrides_combine():
    doc = QuotasConfig.__doc__ or ""
    for phrase in ("user override", "most generous", "default", "unlimited"):
        assert phrase in doc
