"""taplint (STILTS, the IVOA TAP validator) against the running app: no errors in the stages
this service's sync, async, upload and capabilities code answers for."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.tap.test_pyvo_async import tap_url  # noqa: F401 - the uvicorn fixture, reused

# TMS/TME/TMC/MDQ check TAP_SCHEMA's own metadata (tap_schema.py); see README "taplint"
STAGES = "TMV CPV CAP AVV QGE QPO QAS UWS UPL"
# refused on purpose: uploads by http(s) URI would let callers make the service fetch any
# address it can reach (README "Table uploads")
ACCEPTED = ("E-CAP-MUPM-1 Mandatory upload method ivo://ivoa.net/std/TAPRegExt#upload-http",)


@pytest.mark.skipif(shutil.which("stilts") is None, reason="needs Debian's stilts (bootstrap)")
def test_taplint_finds_no_errors(tap_url: str) -> None:  # noqa: F811 - the fixture
    run = subprocess.run(
        ["stilts", "taplint", f"tapurl={tap_url}", "report=EW", f"stages={STAGES}"],
        capture_output=True, timeout=400, check=False,
    )  # fmt: skip
    report = run.stdout.decode("utf-8", "replace")
    assert "Totals:" in report, report[-2000:] + run.stderr.decode("utf-8", "replace")
    errors = [line for line in report.splitlines() if line.startswith("E-")]
    assert [e for e in errors if not e.startswith(ACCEPTED)] == [], report
    for stage in STAGES.split():
        assert f"Section {stage}:" in report
