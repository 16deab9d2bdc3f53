"""taplint (STILTS, the IVOA TAP validator) against the running app, every stage: no errors and
no warnings, for an anonymous caller and for a user who has saved a MyDB table (README
"taplint" lists what taplint cannot check here and why)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from starlette.types import ASGIApp, Receive, Scope, Send

from sciplat.tap.app import create_app
from sciplat.tap.config import TapConfig
from sciplat.tap.storage.duckdb import DuckDBBackend
from sciplat.tap.wiring import build_tap
from tests.tap.conftest import fake_hub, serving
from tests.tap.test_upload import targets, votable_bytes

# every stage taplint 3.4.7 has; OBS/LOC only report that the service has no ObsCore or
# ObsLocTAP table (optional features, "F-" lines, not errors); EXA checks /examples
STAGES = "TMV TME TMS TMC CPV CAP AVV QGE QPO QAS UWS MDQ OBS LOC UPL EXA"
NOT_OFFERED = ("F-LOC-NOTP-",)
ADA = "Bearer good-token"


class _AsCaller:
    """Sends every request with ``authorization`` (taplint 3.4.7 cannot send a token)."""

    def __init__(self, app: ASGIApp, authorization: str) -> None:
        self.app = app
        self.header = (b"authorization", authorization.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [h for h in scope["headers"] if h[0] != b"authorization"]
            scope = {**scope, "headers": [*headers, self.header]}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module", params=["anonymous", "ada"])
def service_url(
    request: pytest.FixtureRequest, hipparcos_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(caller, URL) of the app under uvicorn with the default config; for "ada", every
    request carries her token and she has saved a table (TAP_SCHEMA and /tables show it her)."""
    tapdir = tmp_path_factory.mktemp("taplint")
    backend = DuckDBBackend(hipparcos_dir)
    services = build_tap(TapConfig(), tapdir, hub=fake_hub(), backend=backend, jobs_dir=tapdir)
    app = create_app(services)
    with serving(app if request.param == "anonymous" else _AsCaller(app, ADA)) as url:
        if request.param == "ada":
            saved = requests.put(f"{url}/tables/user_ada.targets", data=votable_bytes(targets()),
                                 headers={"Content-Type": "application/x-votable+xml"},
                                 timeout=30)  # fmt: skip
            assert saved.status_code in (200, 201), saved.text
        yield request.param, url
    backend.close()


@pytest.mark.skipif(shutil.which("stilts") is None, reason="needs Debian's stilts (bootstrap)")
def test_taplint_finds_no_errors_or_warnings(service_url: tuple[str, str]) -> None:
    run = subprocess.run(
        ["stilts", "taplint", f"tapurl={service_url[1]}", "report=EWF", f"stages={STAGES}",
         "maxrepeat=100"],
        capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    report = run.stdout.decode("utf-8", "replace")
    assert "Totals:" in report, report[-2000:] + run.stderr.decode("utf-8", "replace")
    for stage in STAGES.split():
        assert f"Section {stage}:" in report
    lines = report.splitlines()
    assert [line for line in lines if line.startswith("E-")] == [], report
    assert [line for line in lines if line.startswith("W-")] == [], report
    failures = [line for line in lines if line.startswith("F-")]
    assert [f for f in failures if not f.startswith(NOT_OFFERED)] == [], report
    assert "Totals: Errors: 0; Warnings: 0;" in report


def test_the_saved_table_is_among_what_taplint_checked(service_url: tuple[str, str]) -> None:
    """For ada, TAP_SCHEMA lists her table, so the metadata stages above covered it."""
    caller, url = service_url
    r = requests.get(f"{url}/sync", timeout=30, params={
        "LANG": "ADQL", "FORMAT": "csv",
        "QUERY": "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'user_ada'",
    })  # fmt: skip
    assert r.status_code == 200
    assert ("user_ada.targets" in r.text) is (caller == "ada"), r.text
