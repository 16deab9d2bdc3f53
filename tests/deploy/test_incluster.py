"""The hub and TAP containers' entry point, and the hub's cluster configuration."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config as TraitletsConfig

from sciplat.config import parse_config
from sciplat.deploy.hubcluster import cluster_services, configure_cluster_hub
from sciplat.deploy.incluster import HUB_CONFIG, cluster_document, command, main, prepare
from sciplat.errors import ConfigError
from sciplat.factory import Factory
from sciplat.paths import DataDir

DOC = (
    "auth:\n  admin_users: [admin]\nsizes:\n  - {name: small, cpu: 1, memory: 2GiB}\n"
    "services:\n  dask: {enabled: false}\n"
)
ENV = {
    "SCIPLAT_STATE_URL": "postgresql+psycopg://sciplat:pw@db/sciplat",
    "SCIPLAT_HUB_API_URL": "http://t-sciplat-hub:8081/hub/api",
}


def test_secrets_and_the_hub_url_are_filled_in() -> None:
    config = parse_config(cluster_document(DOC, ENV, "sciplat.yaml"))
    assert config.hub.state_url == ENV["SCIPLAT_STATE_URL"]
    assert config.hub.hub_db_url == ""  # not given: JupyterHub's default
    assert config.services.tap.hub_api_url == ENV["SCIPLAT_HUB_API_URL"]
    assert config.services.jobs.hub_api_url == ENV["SCIPLAT_HUB_API_URL"]
    assert config.auth.admin_users == ["admin"]


def test_a_hub_url_in_the_document_wins() -> None:
    doc = DOC + "services:\n  tap:\n    hub_api_url: http://elsewhere/hub/api\n"
    config = parse_config(cluster_document(doc, ENV, "sciplat.yaml"))
    assert config.services.tap.hub_api_url == "http://elsewhere/hub/api"


def test_an_invalid_document_names_the_operators_line() -> None:
    with pytest.raises(ConfigError, match=r"/etc/sciplat/sciplat.yaml:4: sizes.0.cpu"):
        cluster_document(DOC.replace("cpu: 1", "cpu: lots"), ENV, "/etc/sciplat/sciplat.yaml")


def test_prepare_writes_a_private_document(tmp_path: Path) -> None:
    source = tmp_path / "configmap" / "sciplat.yaml"
    source.parent.mkdir()
    source.write_text(DOC)
    data = prepare(source, tmp_path / "data", ENV)
    assert stat.S_IMODE(data.config.stat().st_mode) == 0o600  # it holds the database password
    assert "pw@db" in data.config.read_text()
    prepare(source, tmp_path / "data", {})  # a restarted container writes it again
    assert "pw@db" not in data.config.read_text()


def test_a_missing_document_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        prepare(tmp_path / "nope.yaml", tmp_path / "data", ENV)


def test_commands_of_the_roles(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    assert command("hub", data) == [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)]
    tap = command("tap", data)
    assert tap[1:3] == ["-m", "sciplat.tap"]
    assert tap[tap.index("--bind") + 1] == "0.0.0.0"  # noqa: S104 - the pod's own addresses
    assert command("jobs", data)[1:3] == ["-m", "sciplat.jobs"]
    with pytest.raises(ConfigError, match="unknown role 'proxy'"):
        command("proxy", data)


def test_main_reports_a_bad_document_without_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "sciplat.yaml"
    source.write_text("quotas: {default: {cores: lots}}\n")
    monkeypatch.setenv("SCIPLAT_CONFIG_SOURCE", str(source))
    monkeypatch.setenv("SCIPLAT_DATA_DIR", str(tmp_path / "data"))
    assert main(["hub"]) == 1
    assert "quotas.default.cores" in capsys.readouterr().err
    assert main([]) == 2


SERVICES: list[dict[str, Any]] = [
    {"name": "idle-culler", "command": ["python", "-m", "jupyterhub_idle_culler"]},
    {"name": "tap", "url": "http://127.0.0.1:8090", "command": ["python", "-m", "sciplat.tap"]},
    {"name": "jobs", "url": "http://127.0.0.1:8091", "command": ["python", "-m", "sciplat.jobs"]},
]


def test_tap_and_jobs_become_external_services() -> None:
    env = {"SCIPLAT_TAP_URL": "http://t-sciplat-tap:8090",
           "SCIPLAT_JOBS_URL": "http://t-sciplat-jobs:8091"}  # fmt: skip
    assert cluster_services(SERVICES, env) == [
        SERVICES[0],
        {"name": "tap", "url": "http://t-sciplat-tap:8090"},
        {"name": "jobs", "url": "http://t-sciplat-jobs:8091"},
    ]
    assert cluster_services(SERVICES, {}) == [SERVICES[0]]  # the chart runs neither
    assert cluster_services(SERVICES[:1], env) == SERVICES[:1]  # the config turned them off


def cluster_factory(tmp_path: Path) -> Factory:
    data = prepare(_write(tmp_path / "sciplat.yaml", DOC), tmp_path / "data", {})
    return Factory(data, parse_config(data.config.read_text()))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_hub_listens_on_the_pod_and_uses_the_proxy_service(tmp_path: Path) -> None:
    c = TraitletsConfig()
    env = {
        "SCIPLAT_HUB_CONNECT_URL": "http://t-sciplat-hub.sciplat.svc:8081",
        "SCIPLAT_PROXY_API_URL": "http://t-sciplat-proxy-api:8001",
        "CONFIGPROXY_AUTH_TOKEN": "token-from-the-secret",
        "SCIPLAT_TAP_URL": "http://t-sciplat-tap:8090",
    }
    configure_cluster_hub(c, cluster_factory(tmp_path), env)
    assert c.JupyterHub.hub_bind_url == "http://0.0.0.0:8081"
    assert c.JupyterHub.hub_connect_url == env["SCIPLAT_HUB_CONNECT_URL"]
    assert c.ConfigurableHTTPProxy.api_url == env["SCIPLAT_PROXY_API_URL"]
    assert c.ConfigurableHTTPProxy.auth_token == "token-from-the-secret"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.upgrade_db is True
    tap = next(s for s in c.JupyterHub.services if s["name"] == "tap")
    assert tap == {"name": "tap", "url": "http://t-sciplat-tap:8090"}


def test_a_hub_not_started_by_the_chart_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SCIPLAT_PROXY_API_URL, CONFIGPROXY_AUTH_TOKEN"):
        configure_cluster_hub(
            TraitletsConfig(), cluster_factory(tmp_path), {"SCIPLAT_HUB_CONNECT_URL": "http://h"}
        )


def test_dask_on_in_a_cluster_says_the_chart_does_not_run_it(tmp_path: Path) -> None:
    doc = DOC.replace("dask: {enabled: false}", "dask: {enabled: true}")
    data = prepare(_write(tmp_path / "sciplat.yaml", doc), tmp_path / "data", {})
    factory = Factory(data, parse_config(data.config.read_text()))
    env = {"SCIPLAT_HUB_CONNECT_URL": "http://h", "SCIPLAT_PROXY_API_URL": "http://p",
           "CONFIGPROXY_AUTH_TOKEN": "t"}  # fmt: skip
    with pytest.raises(ConfigError, match=r"config\.services\.dask\.enabled to false"):
        configure_cluster_hub(TraitletsConfig(), factory, env)


def test_the_jupyterhub_config_file_calls_the_cluster_configuration() -> None:
    text = HUB_CONFIG.read_text()
    assert "configure_cluster_hub(get_config(), Factory.from_data_dir())" in text
