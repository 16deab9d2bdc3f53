"""MyDB end to end under uvicorn, driven by pyvo (queries) and its requests session (REST)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from astropy.io.votable import from_table, writeto
from astropy.table import Table

from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import build_tap
from tests.tap.conftest import TOKENS, bearer_session, fake_hub, serving

pyvo = pytest.importorskip("pyvo")

USERS = {
    "mydb-eve": {"name": "eve", "groups": ["astro"], "scopes": ["access:services"]},
    "mydb-mal": {"name": "mal", "groups": ["other"], "scopes": ["access:services"]},
}


@pytest.fixture(scope="module")
def tap_url(hipparcos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("mydb")
    backend = DuckDBBackend(hipparcos_dir)
    services = build_tap(TapConfig(default_maxrec=1000), work, hub=fake_hub(), backend=backend,
                         jobs_dir=work / "jobs", mydb_dir=work)  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for token, owner in USERS.items():
            mp.setitem(TOKENS, token, owner)
        with serving(create_app(services)) as url:
            yield url
    backend.close()


def _refusal(service: pyvo.dal.TAPService, adql: str) -> str:
    with pytest.raises(pyvo.dal.DALQueryError) as info:
        service.run_sync(adql)
    return str(info.value)


def test_create_share_query_unshare_drop(tap_url: str) -> None:
    ada, eve, mal = (bearer_session(t) for t in ("good-token", "mydb-eve", "mydb-mal"))
    as_eve = pyvo.dal.TAPService(tap_url, session=eve)
    as_mal = pyvo.dal.TAPService(tap_url, session=mal)
    query = ("SELECT t.hip, t.label, h.hpmag FROM user_ada.targets AS t "
             "JOIN hipparcos.main AS h ON h.hip = t.hip ORDER BY t.hip")  # fmt: skip
    never_made = _refusal(as_mal, query)

    # ada saves a VOTable (units kept) into her schema
    table = Table({"hip": [1, 17702, 32349], "label": ["first", "Alcyone", "Sirius"],
                   "weight": [0.5, 1.0, 2.0]})  # fmt: skip
    table["weight"].unit = "kg"
    buf = io.BytesIO()
    writeto(from_table(table), buf)
    url = f"{tap_url}/tables/user_ada.targets"
    r = ada.put(url, data=buf.getvalue(), headers={"Content-Type": "application/x-votable+xml"})
    assert r.status_code == 201, r.text
    mine = pyvo.dal.TAPService(tap_url, session=ada).run_sync(
        "SELECT weight FROM user_ada.targets").to_table()  # fmt: skip
    assert str(mine["weight"].unit) == "kg"

    # not shared yet: eve and mal get the answer a missing table gets
    assert _refusal(as_eve, query) == never_made
    assert _refusal(as_mal, query) == never_made

    r = ada.post(f"{url}/sharing", data={"group": "astro", "action": "share"})
    assert r.status_code == 200 and r.json()["shared_with"] == ["astro"]
    rows = as_eve.run_sync(query).to_table()
    assert list(rows["hip"]) == [1, 17702, 32349]
    assert list(rows["label"]) == ["first", "Alcyone", "Sirius"]
    assert abs(rows["hpmag"][1] - 2.9) < 0.2  # Alcyone from the catalogue
    listed = as_eve.run_sync("SELECT table_name FROM TAP_SCHEMA.tables "
                             "WHERE schema_name = 'user_ada'").to_table()  # fmt: skip
    assert list(listed["table_name"]) == ["user_ada.targets"]
    assert "user_ada.targets" in as_eve.tables and "user_ada.targets" not in as_mal.tables
    assert _refusal(as_mal, query) == never_made  # outside astro: no hint it exists
    assert eve.delete(url).status_code == 403  # readers cannot drop it

    r = ada.post(f"{url}/sharing", data={"group": "astro", "action": "unshare"})
    assert r.json()["shared_with"] == []
    assert "is not available" in _refusal(as_eve, query)
    assert ada.delete(url).status_code == 204
    assert "is not available" in _refusal(pyvo.dal.TAPService(tap_url, session=ada), query)
    assert _refusal(as_mal, query) == never_made
