"""taplint (STILTS, the IVOA TAP validator) against the running app, every stage: no errors and
no warnings (README "taplint" lists what taplint cannot check here and why)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.tap.test_pyvo_async import tap_url  # noqa: F401 - the uvicorn fixture, reused

# every stage taplint 3.4.7 has; OBS/LOC/EXA only report that the service has no ObsCore or
# ObsLocTAP table and no examples document (optional features, "F-" lines, not errors)
STAGES = "TMV TME TMS TMC CPV CAP AVV QGE QPO QAS UWS MDQ OBS LOC UPL EXA"
NOT_OFFERED = ("F-LOC-NOTP-", "F-EXA-EXNO-")


@pytest.mark.skipif(shutil.which("stilts") is None, reason="needs Debian's stilts (bootstrap)")
def test_taplint_finds_no_errors_or_warnings(tap_url: str) -> None:  # noqa: F811 - the fixture
    run = subprocess.run(
        ["stilts", "taplint", f"tapurl={tap_url}", "report=EWF", f"stages={STAGES}",
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
    # the queries taplint made all succeeded (TMS: TAP_SCHEMA, MDQ: every table's columns)
    assert "Totals: Errors: 0; Warnings: 0;" in report
