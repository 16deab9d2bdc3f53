"""Ports from the environment: how several platforms share a host (the test platforms do)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciplat.errors import ConfigError
from sciplat.factory import Factory


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("SCIPLAT_CONFIG", "SCIPLAT_TAP_PORT", "SCIPLAT_JOBS_PORT", "SCIPLAT_DASK_PORTS"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "sciplat.yaml").write_text(f"volumes: {{root: {tmp_path / 'storage'}}}\n")
    return tmp_path


def test_services_ports_from_the_environment(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Factory.from_data_dir(data).config.services
    monkeypatch.setenv("SCIPLAT_TAP_PORT", "41001")
    monkeypatch.setenv("SCIPLAT_JOBS_PORT", "41002")
    monkeypatch.setenv("SCIPLAT_DASK_PORTS", "41003,41004,41005")
    services = Factory.from_data_dir(data).config.services
    assert (services.tap.port, services.jobs.port) == (41001, 41002)
    dask = services.dask
    assert (dask.port, dask.api_port, dask.scheduler_port) == (41003, 41004, 41005)
    # nothing else of the sections changes
    assert dask.model_dump(exclude={"port", "api_port", "scheduler_port"}) == (
        defaults.dask.model_dump(exclude={"port", "api_port", "scheduler_port"})
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("41003,41004", r"give 3 port number\(s\), comma-separated \(port, api_port, "
                        r"scheduler_port of services.dask\)"),
        ("a,b,c", "give 3 port number"),
        ("41003,41003,41005", "must differ"),
        ("41003,41004,99999", "less than or equal to 65535"),
    ],
)  # fmt: skip
def test_a_wrong_port_variable_says_what_to_give(
    data: Path, monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("SCIPLAT_DASK_PORTS", value)
    with pytest.raises(ConfigError, match=message) as info:
        Factory.from_data_dir(data)
    assert "$SCIPLAT_DASK_PORTS" in str(info.value)
