"""End to end: the app under uvicorn on a loopback port, driven by pyvo as a scientist would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import build_tap
from tests.tap.conftest import fake_hub, serving

pyvo = pytest.importorskip("pyvo")


@pytest.fixture(scope="module")
def tap_url(hipparcos_dir: Path) -> Iterator[str]:
    config = TapConfig(default_maxrec=1000)
    backend = DuckDBBackend(hipparcos_dir)
    app = create_app(build_tap(config, hipparcos_dir, hub=fake_hub(), backend=backend))
    with serving(app) as url:
        yield url
    backend.close()


def test_cone_search(tap_url: str) -> None:
    service = pyvo.dal.TAPService(tap_url)
    result = service.run_sync(
        "SELECT hip, ra, dec, hpmag FROM hipparcos.main "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 1.0)) "
        "ORDER BY hpmag"
    )
    table = result.to_table()
    assert len(table) == 26  # test_duckdb checks this cone against brute force
    assert table["hip"][0] == 17702  # Alcyone, the brightest Pleiad
    assert str(table["ra"].unit) == "deg"


def test_maxrec_overflow_is_reported(tap_url: str) -> None:
    service = pyvo.dal.TAPService(tap_url)
    result = service.run_sync("SELECT hip FROM hipparcos.main", maxrec=25)
    assert len(result) == 25
    assert result.query_status == "OVERFLOW"


def test_service_limit_overflow_warns(tap_url: str) -> None:
    service = pyvo.dal.TAPService(tap_url)
    with pytest.warns(pyvo.dal.DALOverflowWarning, match="truncated"):
        result = service.run_sync("SELECT hip FROM hipparcos.main")
    assert len(result) == 1000  # the service's default_maxrec


def test_exact_fit_is_not_an_overflow(tap_url: str) -> None:
    result = pyvo.dal.TAPService(tap_url).run_sync("SELECT TOP 5 hip FROM hipparcos.main", maxrec=5)
    assert len(result) == 5
    assert result.query_status == "OK"


def test_bad_query_says_what_is_wrong(tap_url: str) -> None:
    service = pyvo.dal.TAPService(tap_url)
    with pytest.raises(pyvo.dal.DALQueryError) as caught:
        service.run_sync("SELECT hpmg FROM hipparcos.main")
    assert "column 'hpmg' is not in hipparcos.main. Did you mean hpmag" in str(caught.value)


def test_tables_and_capabilities(tap_url: str) -> None:
    service = pyvo.dal.TAPService(tap_url)
    assert "hipparcos.main" in [t.name for t in service.tables]
    columns = {c.name: c for c in service.tables["hipparcos.main"].columns}
    assert columns["pmra"].unit == "mas/yr"
    assert service.hardlimit == 10_000_000
