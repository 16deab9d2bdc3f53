"""Suite-wide fixtures: a real running platform, and markers for root-only tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.platform import (
    Platform,
    remove_test_accounts,
    remove_test_cgroups,
    running_platform,
)

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: per-user UIDs, cgroups and mount namespaces (CI runs as root)",
)


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.geteuid() == 0:
        remove_test_accounts()
        remove_test_cgroups()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.geteuid() == 0:
        remove_test_accounts()
        remove_test_cgroups()


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    """A platform shared by the tests of one module (each test uses its own users)."""
    with running_platform() as p:
        yield p
