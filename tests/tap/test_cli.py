"""``sciplat catalog load`` (its handler) and the config section."""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy import units as u
from astropy.table import Table
from pydantic import ValidationError

from sciplat.tap.cli import catalog_load
from sciplat.tap.config import TapConfig
from sciplat.tap.errors import CatalogueLoadError
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import TapServices, build_tap
from tests.tap.conftest import fake_hub


@pytest.fixture
def services(tmp_path: Path) -> TapServices:
    return build_tap(TapConfig(), tmp_path, hub=fake_hub(), backend=DuckDBBackend(tmp_path / "t"))


def _ecsv(tmp_path: Path) -> Path:
    table = Table({"name": ["a", "b", "c"], "RAJ2000": [10.0, 10.1, 250.0],
                   "DEJ2000": [-5.0, -5.1, 60.0], "flux": [1.0, 2.0, 3.0]})  # fmt: skip
    table["RAJ2000"].unit = u.deg
    table["RAJ2000"].meta["ucd"] = "pos.eq.ra;meta.main"
    table["DEJ2000"].unit = u.deg
    table["DEJ2000"].meta["ucd"] = "pos.eq.dec;meta.main"
    table["flux"].unit = u.mJy
    table["flux"].description = "Flux density at 1.4 GHz"
    path = tmp_path / "radio.ecsv"
    table.write(path)
    return path


def test_load_ecsv_keeps_units_and_indexes_positions(services: TapServices, tmp_path: Path) -> None:
    line = catalog_load(services, str(_ecsv(tmp_path)), "radio.sources", description="toy")
    assert (
        line == "loaded 3 rows into radio.sources, sorted by HEALPix order 12 of (raj2000, dej2000)"
    )
    info = services.backend.catalogue().table("radio", "sources")
    assert info is not None
    flux = info.column("flux")
    assert flux is not None
    assert (flux.unit, flux.description) == ("mJy", "Flux density at 1.4 GHz")
    rows = (
        services.backend.run("SELECT name FROM radio.sources ORDER BY healpix", 5)
        .column(0)
        .to_pylist()
    )
    assert sorted(rows) == ["a", "b", "c"]


def test_load_hipparcos_demo(services: TapServices) -> None:
    line = catalog_load(services, "hipparcos", "stars.hip")
    assert line.startswith("loaded 117955 rows into stars.hip, sorted by HEALPix")


@pytest.mark.parametrize("table", ["nodot", "a.b.c", "TAP_SCHEMA.x", "1x.y", "a.b;c"])
def test_bad_table_names(services: TapServices, tmp_path: Path, table: str) -> None:
    with pytest.raises(CatalogueLoadError, match=r"write schema\.table"):
        catalog_load(services, str(_ecsv(tmp_path)), table)


@pytest.mark.parametrize("table", ["user_ada.stars", "USER_x.t", "tap_upload.t"])
def test_users_and_upload_schemas_are_not_for_catalogues(
    services: TapServices, tmp_path: Path, table: str
) -> None:
    with pytest.raises(CatalogueLoadError, match=r"user_|not TAP_SCHEMA"):
        catalog_load(services, str(_ecsv(tmp_path)), table)


def test_missing_file(services: TapServices) -> None:
    with pytest.raises(CatalogueLoadError, match="no such file"):
        catalog_load(services, "/nonexistent.fits", "a.b")


def test_config_forbids_unknown_keys_and_checks_values() -> None:
    with pytest.raises(ValidationError, match=r"extra_forbidden|Extra inputs"):
        TapConfig.model_validate({"prefx": "/api/tap"})
    with pytest.raises(ValidationError):
        TapConfig.model_validate({"prefix": "/api/tap/"})
    assert TapConfig().prefix == "/api/tap"
    for name, field in TapConfig.model_fields.items():
        assert field.description, name


def test_service_reads_defaults_when_the_platform_config_has_no_tap_section(
    tmp_path: Path,
) -> None:
    from sciplat.tap.__main__ import build_services

    (tmp_path / "sciplat.yaml").write_text("hub:\n  hub_port: 8181\n")
    services, config = build_services(tmp_path)
    assert config == TapConfig()
    assert services.access.hub is not None
    assert services.access.hub.api_url == "http://127.0.0.1:8181/hub/api"
    assert services.access.rate_check is not None  # the platform's api_rate applies
    assert build_services(tmp_path, '{"port": 9999}')[1].port == 9999
