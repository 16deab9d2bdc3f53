"""sciplat/config.py: the document model, its error messages and line numbers, sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciplat.config import (
    Config,
    EnvironmentConfig,
    SizeConfig,
    VolumesConfig,
    load_config,
    parse_bytes,
    parse_config,
)
from sciplat.errors import ConfigError

ALLOWED_PROVIDERS = "'local', 'github', 'cilogon' or 'oidc'"


def problems(text: str, source: str = "site.yaml") -> list[str]:
    """The lines of the ConfigError ``text`` raises (without the heading)."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source)
    lines = info.value.message.splitlines()
    if lines[0] == "invalid configuration:":
        return [line.strip() for line in lines[1:]]
    return lines


# -- good documents ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "~\n", "{}\n"])
def test_empty_document_gives_defaults(text):
    assert parse_config(text) == Config()


def test_defaults():
    cfg = parse_config("")
    assert cfg.auth.provider == "local"
    assert cfg.auth.local.max_failures == 5
    assert cfg.auth.local.lockout_seconds == 60
    assert cfg.identity.uid_range == (200000, 299999)
    assert cfg.identity.gid_range == (300000, 399999)
    assert [(s.name, s.cpu, s.memory, s.default) for s in cfg.sizes] == [
        ("small", 1, 4 * 1024**3, True),
        ("medium", 2, 8 * 1024**3, False),
    ]
    assert cfg.environments == []
    assert cfg.volumes.root == Path("/srv/sciplat")
    assert cfg.hub.port == 8000


def test_full_document():
    cfg = parse_config(
        """\
auth:
  provider: oidc
  admin_users: [admin]
  oidc:
    issuer: https://login.example.org/realms/science
identity:
  uid_range: [10000, 19999]
  gid_range: [20000, 29999]
groups:
  - name: astro
    members: [alice, bob]
sizes:
  - name: tiny
    cpu: 0.5
    memory: 512MiB
  - name: big
    cpu: 4
    memory: 16G
    pids: 4096
    default: true
environments:
  - name: w2026-47
    path: /srv/envs/w2026-47
    kind: weekly
volumes:
  root: /data/sciplat
"""
    )
    assert cfg.auth.provider == "oidc"
    assert cfg.auth.oidc.issuer == "https://login.example.org/realms/science"
    assert cfg.identity.uid_range == (10000, 19999)
    assert cfg.groups[0].members == ["alice", "bob"]
    assert cfg.sizes[0].memory == 512 * 1024**2
    assert cfg.sizes[1].memory == 16 * 1000**3
    assert cfg.sizes[1].pids == 4096
    assert cfg.environments[0].path == Path("/srv/envs/w2026-47")
    assert cfg.volumes.root == Path("/data/sciplat")


# -- bad documents: the message names file, line, key path, value and what is allowed -------


def test_unknown_key_names_file_line_and_path():
    text = "auth:\n  provider: local\n  local:\n    max_failure: 3\n"
    assert problems(text) == [
        "site.yaml:4: auth.local.max_failure = 3: unknown key (check its spelling and section)"
    ]


def test_unknown_key_in_a_list_item():
    text = "sizes:\n  - name: small\n    cpu: 1\n    memory: 1GiB\n    gpu: 1\n"
    assert problems(text) == [
        "site.yaml:5: sizes.0.gpu = 1: unknown key (check its spelling and section)"
    ]


def test_unknown_section_key_reported_at_its_own_line():
    text = "hub:\n  port: 8000\nhubb:\n  port: 1\n"
    assert problems(text) == ["site.yaml:3: hubb: unknown key (check its spelling and section)"]


def test_bad_literal_lists_allowed_values():
    text = "hub:\n  port: 8000\nauth:\n  provider: foo\n"
    assert problems(text) == [
        f"site.yaml:4: auth.provider = 'foo': not allowed: {ALLOWED_PROVIDERS}"
    ]


def test_bad_literal_in_flow_mapping():
    assert problems("auth: {provider: foo}\n") == [
        f"site.yaml:1: auth.provider = 'foo': not allowed: {ALLOWED_PROVIDERS}"
    ]


def test_bad_size_string():
    text = "sizes:\n  - name: small\n    cpu: 1\n    memory: 4 bananas\n"
    assert problems(text) == [
        "site.yaml:4: sizes.0.memory = '4 bananas': '4 bananas' is not a size: write e.g. 4GiB, "
        "512MiB, 2G or a number of bytes"
    ]


@pytest.mark.parametrize("memory", ["-1", "0"])
def test_non_positive_memory_is_refused(memory):
    text = f"sizes:\n  - name: small\n    cpu: 1\n    memory: {memory}\n"
    assert problems(text)[0].startswith("site.yaml:4: sizes.0.memory")


def test_every_problem_is_listed():
    text = "hub:\n  port: 99999\nauth:\n  provider: foo\n"
    assert sorted(problems(text)) == [
        "site.yaml:2: hub.port = 99999: Input should be less than or equal to 65535",
        f"site.yaml:4: auth.provider = 'foo': not allowed: {ALLOWED_PROVIDERS}",
    ]


def test_missing_required_field():
    text = "sizes:\n  - name: small\n    cpu: 1\n"
    assert problems(text) == ["site.yaml:2: sizes.0.memory: Field required"]


def test_overlapping_uid_and_gid_ranges():
    text = (
        "hub:\n  port: 8000\n"
        "identity:\n  uid_range: [200000, 299999]\n  gid_range: [250000, 350000]\n"
    )
    [problem] = problems(text)
    source, line, rest = problem.split(":", 2)
    assert source == "site.yaml"
    # a section-level error points into the identity section (its key or first entry)
    assert int(line) in (3, 4)
    assert rest == (
        " identity: uid_range [200000, 299999] overlaps gid_range [250000, 350000]: user "
        "private groups use the UID as GID, so the ranges must be disjoint"
    )


@pytest.mark.parametrize(
    ("ranges", "reason"),
    [
        ("uid_range: [5000, 4000]", "a range is written [low, high] with low <= high"),
        ("gid_range: [100, 200]", "ranges must start at 1000 or above, clear of system accounts"),
    ],
)
def test_bad_ranges(ranges, reason):
    [problem] = problems(f"identity:\n  {ranges}\n")
    assert problem == f"site.yaml:2: identity.{ranges.replace(':', ' =', 1)}: {reason}"


def test_duplicate_size_names():
    text = (
        "sizes:\n  - name: small\n    cpu: 1\n    memory: 1GiB\n"
        "  - name: small\n    cpu: 2\n    memory: 2GiB\n"
    )
    [problem] = problems(text)
    assert problem.startswith("site.yaml:")
    assert problem.endswith("sizes: names must be unique, repeated: small")


def test_two_default_sizes():
    text = (
        "sizes:\n  - name: a\n    cpu: 1\n    memory: 1GiB\n    default: true\n"
        "  - name: b\n    cpu: 2\n    memory: 2GiB\n    default: true\n"
    )
    [problem] = problems(text)
    assert problem.startswith("site.yaml:")
    assert problem.endswith("sizes: at most one size can be the default")


def test_duplicate_size_names_point_at_the_sizes():
    text = (
        "hub:\n  port: 8000\n"
        "sizes:\n  - name: small\n    cpu: 1\n    memory: 1GiB\n"
        "  - name: small\n    cpu: 2\n    memory: 2GiB\n"
    )
    [problem] = problems(text)
    line = int(problem.split(":")[1])
    assert 3 <= line <= 9


def test_empty_size_list():
    assert problems("sizes: []\n") == ["site.yaml:1: sizes: at least one size is needed"]


def test_bad_group_name():
    [problem] = problems("groups:\n  - name: Astro\n")
    assert problem.startswith("site.yaml:2: groups.0.name = 'Astro': String should match")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "auth:\n  provider: local\n bad: 1\n",
            "site.yaml:3: not valid YAML: expected <block end>, but found '<block mapping start>'",
        ),
        (
            "auth:\n\tprovider: local\n",
            "site.yaml:2: not valid YAML: found character '\\t' that cannot start any token",
        ),
    ],
)
def test_invalid_yaml_names_the_line(text, expected):
    assert problems(text) == [expected]


def test_document_must_be_a_mapping():
    assert problems("- a\n- b\n") == ["site.yaml:1: the document must be a mapping of sections"]


def test_load_config_reads_the_file(tmp_path):
    path = tmp_path / "sciplat.yaml"
    path.write_text("hub:\n  port: 9000\n  bogus: 1\n")
    with pytest.raises(ConfigError, match=rf"^invalid configuration:\n  {path}:3: hub.bogus"):
        load_config(path)
    path.write_text("hub:\n  port: 9000\n")
    assert load_config(path).hub.port == 9000


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read the configuration .*: No such file"):
        load_config(tmp_path / "missing.yaml")


# -- parse_bytes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1024, 1024),
        ("1024", 1024),
        ("100b", 100),
        ("512M", 512 * 1000**2),
        ("512MB", 512 * 1000**2),
        ("512MiB", 512 * 1024**2),
        ("4GiB", 4 * 1024**3),
        ("4gib", 4 * 1024**3),
        ("4 GiB", 4 * 1024**3),
        (" 2G ", 2 * 1000**3),
        ("1.5G", 1_500_000_000),
        ("1.5Ki", 1536),
        ("1k", 1000),
        ("3T", 3 * 1000**4),
        ("1TiB", 1024**4),
    ],
)
def test_parse_bytes(value, expected):
    assert parse_bytes(value) == expected


@pytest.mark.parametrize("value", ["4 bananas", "", "GiB", "-1G", "1e3", "4 GiB GiB", 1.5, None])
def test_parse_bytes_refuses(value):
    with pytest.raises(ValueError, match=r"is not a size: write e\.g\. 4GiB"):
        parse_bytes(value)


@pytest.mark.parametrize("value", [True, False])
def test_parse_bytes_refuses_booleans(value):
    with pytest.raises(ValueError, match="expected a size"):
        parse_bytes(value)


# -- helpers on the model ------------------------------------------------------------------


def test_volume_paths_default():
    vols = VolumesConfig()
    assert vols.home_path("alice") == Path("/srv/sciplat/home/alice")
    assert vols.group_path("astro") == Path("/srv/sciplat/groups/astro")


def test_volume_paths_templates():
    vols = VolumesConfig(root=Path("/data"), home="/home/{user}", group="{root}/projects/{group}")
    assert vols.home_path("alice") == Path("/home/alice")
    assert vols.group_path("astro") == Path("/data/projects/astro")


def size(name: str, default: bool = False) -> SizeConfig:
    return SizeConfig(name=name, cpu=1, memory=1024**3, default=default)


def env(name: str, recommended: bool = False) -> EnvironmentConfig:
    return EnvironmentConfig(name=name, path=Path(f"/envs/{name}"), recommended=recommended)


def test_default_size_is_the_marked_one():
    cfg = Config(sizes=[size("a"), size("b", default=True), size("c")])
    assert cfg.default_size().name == "b"


def test_default_size_else_the_first():
    cfg = Config(sizes=[size("a"), size("b")])
    assert cfg.default_size().name == "a"


def test_default_environment():
    assert Config().default_environment() is None
    assert Config(environments=[env("e1"), env("e2")]).default_environment().name == "e1"
    recommended = Config(environments=[env("e1"), env("e2", recommended=True)])
    assert recommended.default_environment().name == "e2"


def test_two_recommended_environments_refused():
    text = (
        "environments:\n  - name: a\n    path: /a\n    recommended: true\n"
        "  - name: b\n    path: /b\n    recommended: true\n"
    )
    [problem] = problems(text)
    assert problem.endswith("environments: at most one environment can be recommended")


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(ValueError, match="frozen"):
        cfg.hub.port = 1  # type: ignore[misc]


def test_a_wrong_upload_network_is_refused_with_its_line():
    text = "services:\n  tap:\n    upload_url_networks: [public, 10.0.0.0/8, intranet]\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert "sciplat.yaml:3: services.tap.upload_url_networks" in info.value.message
    assert "'intranet' is neither 'public' nor a network" in info.value.message
    assert parse_config(text.replace(", intranet", "")).services.tap.upload_url_networks == (
        "public",
        "10.0.0.0/8",
    )
