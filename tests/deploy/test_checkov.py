"""checkov finds nothing in the rendered chart beyond the skips in .checkov.yaml (each says why)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import BOOTSTRAP, CHART, CHECKOV, VALUES_1000, Run, offline_prefix


def test_checkov_passes_with_the_commented_skip_list(helm: Run, tmp_path: Path) -> None:
    if not CHECKOV.exists():
        pytest.skip(f"checkov missing at {CHECKOV}: {BOOTSTRAP}")
    done = helm("template", "t", str(CHART), "--namespace", "sciplat", "-f", str(VALUES_1000))
    assert done.returncode == 0, done.stderr
    (tmp_path / "sciplat.yaml").write_text(done.stdout)
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [
            *offline_prefix(),
            str(CHECKOV),
            "--config-file",
            str(CHART / ".checkov.yaml"),
            "-d",
            str(tmp_path),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 100  # it really looked at the objects


def test_every_skip_is_explained() -> None:
    lines = (CHART / ".checkov.yaml").read_text().splitlines()
    skips = yaml.safe_load("\n".join(lines))["skip-check"]
    assert skips
    for skip in skips:  # a comment right above it, or above the skips listed with it
        at = lines.index(f"  - {skip}") - 1
        while lines[at].startswith("  - CKV"):
            at -= 1
        assert lines[at].strip().startswith("#"), f"{skip} has no comment saying why"
