"""sciplat/quotas/services/resolver.py: which limit applies and where it comes from."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sciplat.config import QuotaLimits, QuotasConfig, parse_config
from sciplat.quotas.models import QUOTA_KEYS
from sciplat.quotas.services.resolver import QuotaResolver

DOC = """\
quotas:
  default: {labs: 1, cores: 2, memory: 4GiB, storage: 10GiB}
  groups:
    astro: {cores: 8, memory: 16GiB, labs: 0}
    optics: {cores: 4, memory: 32GiB, dask_workers: 10}
    tiny: {storage: 1GiB}
  users:
    alice: {cores: 1, jobs: 0}
    bob: {storage: 500GiB}
"""


@pytest.fixture
def resolver() -> QuotaResolver:
    return QuotaResolver(parse_config(DOC).quotas)


def pairs(resolver: QuotaResolver, user: str, groups: list[str]) -> dict[str, tuple[Any, str]]:
    quota = resolver.effective(user, groups)
    return {k: (v.value, v.source) for k, v in quota.limits.items()}


def test_defaults_and_absent_keys(resolver):
    got = pairs(resolver, "carol", [])
    assert got["labs"] == (1, "default")
    assert got["cores"] == (2, "default")
    assert got["memory"] == (4 * 1024**3, "default")
    assert got["dask_workers"] == (None, "unlimited")
    assert set(got) == set(QUOTA_KEYS)


def test_most_generous_group_applies_key_by_key(resolver):
    got = pairs(resolver, "carol", ["optics", "astro"])
    assert got["cores"] == (8, "group:astro")
    assert got["memory"] == (32 * 1024**3, "group:optics")
    assert got["dask_workers"] == (10, "group:optics")


def test_group_cannot_go_below_default(resolver):
    got = pairs(resolver, "carol", ["astro", "tiny"])
    assert got["labs"] == (1, "default")  # astro's 0 does not take labs away
    assert got["storage"] == (10 * 1024**3, "default")


def test_user_override_wins_over_everything(resolver):
    got = pairs(resolver, "alice", ["astro", "optics"])
    assert got["cores"] == (1, "user:alice")  # below default and groups: an override may
    assert got["memory"] == (32 * 1024**3, "group:optics")
    assert pairs(resolver, "bob", ["tiny"])["storage"] == (500 * 1024**3, "user:bob")


def test_zero_means_not_allowed_and_is_kept(resolver):
    limit = resolver.effective("alice", [])["jobs"]
    assert (limit.value, limit.source) == (0, "user:alice")
    assert not limit.allows(1)
    assert limit.allows(0)


def test_unknown_groups_and_users_fall_back_to_default(resolver):
    assert pairs(resolver, "zed", ["nosuch"])["cores"] == (2, "default")


def test_nothing_configured_is_unlimited():
    quota = QuotaResolver(QuotasConfig()).effective("alice", ["astro"])
    assert all(v.value is None and v.source == "unlimited" for v in quota.limits.values())
    assert quota["storage"].allows(10**18)


def test_group_without_default_applies():
    cfg = QuotasConfig(groups={"astro": QuotaLimits(cores=3)})
    assert QuotaResolver(cfg).limit("cores", "x", ["astro"]).source == "group:astro"


def test_group_storage_of_a_group(resolver):
    cfg = parse_config("quotas:\n  default: {group_storage: 1TiB}\n  groups: {astro: "
                       "{group_storage: 5TiB}}\n").quotas  # fmt: skip
    r = QuotaResolver(cfg)
    assert (r.group_storage("astro").value, r.group_storage("astro").source) == (
        5 * 1024**4, "group:astro")  # fmt: skip
    assert r.group_storage("optics").source == "default"
    assert resolver.group_storage("astro").source == "unlimited"


def test_unknown_key_raises(resolver):
    with pytest.raises(KeyError):
        resolver.limit("gpus", "alice", [])


def test_to_dict(resolver):
    doc = resolver.effective("alice", ["astro"]).to_dict()
    assert doc["limits"]["cores"] == {"limit": 1, "source": "user:alice"}
    assert doc["groups"] == ["astro"]


# -- properties ------------------------------------------------------------------------------

values = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))
GROUPS = ["g1", "g2", "g3"]


@st.composite
def configs(draw: st.DrawFn) -> tuple[QuotasConfig, list[str]]:
    def limits() -> QuotaLimits:
        return QuotaLimits(labs=draw(values), storage=draw(values), cores=draw(values))

    groups = {g: limits() for g in draw(st.lists(st.sampled_from(GROUPS), unique=True))}
    users = {"alice": limits()} if draw(st.booleans()) else {}
    member_of = draw(st.lists(st.sampled_from([*GROUPS, "other"]), unique=True))
    return QuotasConfig(default=limits(), groups=groups, users=users), member_of


@given(configs(), st.sampled_from(["labs", "storage", "cores"]))
def test_never_below_default_unless_user_override(case, key):
    cfg, member_of = case
    limit = QuotaResolver(cfg).limit(key, "alice", member_of)
    default = getattr(cfg.default, key)
    if limit.source.startswith("user:") or default is None:
        return
    assert limit.value is not None
    assert limit.value >= default


@given(configs(), st.sampled_from(["labs", "storage", "cores"]))
def test_never_above_the_largest_grant(case, key):
    cfg, member_of = case
    limit = QuotaResolver(cfg).limit(key, "alice", member_of)
    grants = [getattr(cfg.default, key)]
    grants += [getattr(cfg.groups[g], key) for g in member_of if g in cfg.groups]
    grants += [getattr(cfg.users["alice"], key)] if "alice" in cfg.users else []
    present = [g for g in grants if g is not None]
    if not present:
        assert (limit.value, limit.source) == (None, "unlimited")
    else:
        assert limit.value is not None
        assert limit.value <= max(present)


@given(configs(), st.sampled_from(["labs", "storage", "cores"]))
def test_source_names_where_the_value_is_written(case, key):
    cfg, member_of = case
    limit = QuotaResolver(cfg).limit(key, "alice", member_of)
    kind, _, name = limit.source.partition(":")
    where = {"default": cfg.default, "user": cfg.users.get(name), "group": cfg.groups.get(name)}
    if kind == "unlimited":
        assert limit.value is None
    else:
        assert getattr(where[kind], key) == limit.value
        assert kind != "group" or name in member_of
