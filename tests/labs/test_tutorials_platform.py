"""Tutorials from a git repository in every lab: read-only, refreshed at each lab start."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_root
from tests.support.kernel import LabKernel
from tests.support.platform import (
    TEST_STORAGE,
    Platform,
    random_suffix,
    running_platform,
)

pytestmark = [needs_root, pytest.mark.slow]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)  # fmt: skip


@pytest.fixture(scope="module")
def repo() -> Iterator[Path]:
    path = TEST_STORAGE / f"tutorials-{random_suffix()}"
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    (path / "01-intro.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, '
                                         '"nbformat_minor": 5}')  # fmt: skip
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "first")
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="module")
def tutorial_platform(repo: Path) -> Iterator[Platform]:
    with running_platform(tutorials={"source": f"file://{repo}", "refresh_seconds": 0}) as p:
        yield p


def test_tutorials_appear_read_only_and_refresh(tutorial_platform: Platform, repo: Path) -> None:
    p = tutorial_platform
    user = p.add_user("learner")
    token = p.token(user)
    p.start_lab(user, token)
    kernel = LabKernel(p.url, user, token)
    try:
        out = kernel.run(
            "import os, pathlib\n"
            "t = pathlib.Path.home() / 'tutorials'\n"
            "print(sorted(x.name for x in t.iterdir()))\n"
            "try:\n"
            "    (t / '01-intro.ipynb').write_text('mine')\n"
            "    print('WROTE')\n"
            "except OSError:\n"
            "    print('READ-ONLY')\n"
            "(pathlib.Path.home() / 'my-intro.ipynb').write_text('mine')\n"
            "print('OWN COPY OK')"
        )
    finally:
        kernel.close()
    assert out.split("\n")[:3] == ["['01-intro.ipynb']", "READ-ONLY", "OWN COPY OK"]

    (repo / "02-tap.ipynb").write_text("{}")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "second")
    p.stop_lab(user, token)
    p.start_lab(user, token)
    kernel = LabKernel(p.url, user, token)
    try:
        listing = kernel.run(
            "import pathlib; t = pathlib.Path.home()\n"
            "print(sorted(x.name for x in (t / 'tutorials').iterdir()))\n"
            "print((t / 'my-intro.ipynb').read_text())"
        )
    finally:
        kernel.close()
    assert listing.split("\n")[:2] == ["['01-intro.ipynb', '02-tap.ipynb']", "mine"]
