"""sciplat/quotas/services/usage.py and quotas.py: use from plain inputs, checks, reports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sciplat.config import VolumesConfig, parse_config
from sciplat.errors import ThrottledError
from sciplat.identity.models import Group, User
from sciplat.quotas.errors import QuotaExceededError
from sciplat.quotas.models import LabUse
from sciplat.quotas.services.quotas import QuotaService, storage_limit_of
from sciplat.quotas.services.ratelimit import RateLimiter
from sciplat.quotas.services.resolver import QuotaResolver
from sciplat.quotas.services.usage import UsageService

MiB = 1024**2
GiB = 1024**3
DOC = """\
quotas:
  default: {labs: 2, cores: 4, memory: 8GiB, storage: 100MiB, jobs: 3}
  groups:
    astro: {group_storage: 1MiB}
  users:
    carol: {storage: 0, labs: 0}
"""
ALICE = User("alice", 5000, 5000, groups=(Group("astro", 6000),))


class FakeHomes:
    def __init__(self, used: int, group_used: int = MiB) -> None:
        self.amount = used
        self.group_amount = group_used

    def used(self, user: User) -> int:
        return self.amount

    def group_used(self, group: Group) -> int:
        return self.group_amount


class FakeStorage:
    kind = "loop-image"
    enforcing = True
    reason = "test"

    def __init__(self, warning: str | None = None) -> None:
        self.message = warning

    def warning(self, user: User) -> str | None:
        return self.message

    def capacity(self, user: User) -> int | None:
        return None

    def group_warning(self, group: Group) -> str | None:
        return f"group directory of {group.name} is 100% full" if self.message else None


def service(tmp_path: Path, home_used: int = 0, warning: str | None = None) -> QuotaService:
    volumes = VolumesConfig(root=tmp_path)
    resolver = QuotaResolver(parse_config(DOC).quotas)
    usage = UsageService(volumes, FakeHomes(home_used))
    return QuotaService(resolver, usage, FakeStorage(warning))


def test_usage_adds_up_labs_and_measures_directories(tmp_path):
    (tmp_path / "groups" / "astro").mkdir(parents=True)
    (tmp_path / "groups" / "astro" / "data").write_bytes(os.urandom(300_000))
    usage = UsageService(VolumesConfig(root=tmp_path), FakeHomes(123, 1230)).usage(
        ALICE, [LabUse(1.0, 2 * GiB), LabUse(0.5, GiB)], {"jobs": 2}
    )
    assert usage.values == {"labs": 2, "cores": 1.5, "memory": 3 * GiB, "storage": 123, "jobs": 2}
    assert usage.group_storage == {"astro": 1230}  # measured by the storage backend
    assert usage.get("group_storage") == 1230
    walked = UsageService(VolumesConfig(root=tmp_path)).usage(ALICE, [])
    assert walked.group_storage["astro"] >= 300_000
    assert usage.get("dask_workers") is None


def test_home_is_walked_without_a_storage_backend(tmp_path):
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    (home / "f").write_bytes(b"x" * 50_000)
    assert UsageService(VolumesConfig(root=tmp_path)).home(ALICE) >= 50_000


def test_lab_start_within_quota_passes(tmp_path):
    service(tmp_path).check_lab_start(ALICE, [LabUse(2, 4 * GiB)], LabUse(2, 4 * GiB))


@pytest.mark.parametrize(
    ("running", "new", "key", "words"),
    [
        ([LabUse(1, GiB)] * 2, LabUse(1, GiB), "labs", "(quota labs: limit 2, in use 2)"),
        ([LabUse(3, GiB)], LabUse(2, GiB), "cores", "(quota cores: limit 4 cores, in use 3 cores)"),
        ([LabUse(1, 6 * GiB)], LabUse(1, 4 * GiB), "memory", "in use 6 GiB). This needs 4 GiB"),
    ],
)
def test_lab_start_over_quota_names_quota_limit_use_and_advice(tmp_path, running, new, key, words):
    with pytest.raises(QuotaExceededError) as info:
        service(tmp_path).check_lab_start(ALICE, running, new)
    err = info.value
    assert (err.key, err.code, err.status_code) == (key, "quota_exceeded", 403)
    assert words in err.message
    assert "ask an administrator" in err.message


def test_zero_quota_says_not_allowed(tmp_path):
    carol = User("carol", 5001, 5001)
    with pytest.raises(QuotaExceededError) as info:
        service(tmp_path).check_lab_start(carol, [], LabUse(1, GiB))
    assert "not allowed for your account (quota labs is 0)" in info.value.message


def test_storage_zero_refuses_a_lab(tmp_path):
    carol = User("carol", 5001, 5001)
    svc = QuotaService(
        QuotaResolver(parse_config("quotas: {users: {carol: {storage: 0}}}").quotas),
        UsageService(VolumesConfig(root=tmp_path)),
    )
    with pytest.raises(QuotaExceededError) as info:
        svc.check_lab_start(carol, [], LabUse(1, GiB))
    assert info.value.key == "storage"


def test_generic_check_for_other_services(tmp_path):
    svc = service(tmp_path)
    svc.check(ALICE, "jobs", 2)
    with pytest.raises(QuotaExceededError, match="Running notebook jobs: quota reached"):
        svc.check(ALICE, "jobs", 3)
    svc.check(ALICE, "dask_workers", 10**6)  # unlimited


def test_storage_limit_of_feeds_the_storage_backend(tmp_path):
    limit_of = storage_limit_of(QuotaResolver(parse_config(DOC).quotas))
    assert limit_of(ALICE) == 100 * MiB
    assert limit_of(User("carol", 1, 1)) == 0


def test_report_lines_sources_and_warnings(tmp_path):
    (tmp_path / "groups" / "astro").mkdir(parents=True)
    (tmp_path / "groups" / "astro" / "big").write_bytes(os.urandom(MiB))
    report = service(tmp_path, home_used=95 * MiB, warning="Your home directory is 95 % full.")
    result = report.report(ALICE, [LabUse(1, GiB)])
    lines = {line.key: line for line in result.lines}
    assert lines["storage"].used == 95 * MiB
    assert lines["storage"].limit.source == "default"
    assert lines["cores"].used == 1
    assert lines["dask_workers"].used is None
    assert "astro: 1" in lines["group_storage"].detail
    assert any(w.startswith("storage: 95 MiB of 100 MiB") for w in result.warnings)
    assert "group directory of astro is 100% full" in result.warnings
    assert "Your home directory is 95 % full." in result.warnings
    assert "storage quota of alice is not enforced yet" in result.warnings[-1]
    doc = result.to_dict()
    assert doc["quotas"]["memory"] == {"limit": 8 * GiB, "source": "default", "used": GiB}
    assert doc["storage_backend"] == {"kind": "loop-image", "enforcing": True, "reason": "test"}


def test_check_document_names_unknown_entries(tmp_path):
    svc = service(tmp_path)
    result = svc.check_document([ALICE], ["optics"])
    assert result.problems == ("quotas.users.carol: no such user",)
    assert [q.user for q in result.effective] == ["alice"]
    assert svc.check_document([], []).problems == (
        "quotas.groups.astro: no such group",
        "quotas.users.carol: no such user",
    )


def test_rate_checks_use_the_users_api_rate(tmp_path):
    clock = [0.0]
    resolver = QuotaResolver(parse_config("quotas: {default: {api_rate: 2}, users: "
                                          "{carol: {api_rate: 0}}}").quotas)  # fmt: skip
    svc = QuotaService(resolver, UsageService(VolumesConfig(root=tmp_path)), None,
                       RateLimiter(lambda: clock[0]))  # fmt: skip
    svc.check_rate(ALICE, "tap")
    svc.check_rate(ALICE, "tap")
    with pytest.raises(ThrottledError) as info:
        svc.check_rate(ALICE, "tap")
    assert info.value.retry_after == 30
    svc.check_rate(ALICE, "jobs")
    clock[0] += 30
    svc.check_rate(ALICE, "tap")
    with pytest.raises(QuotaExceededError):
        svc.check_rate(User("carol", 1, 1), "tap")
