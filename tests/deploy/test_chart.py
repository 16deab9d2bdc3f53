"""The chart renders, offline, into objects Kubernetes accepts, and refuses wrong values."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sciplat.config import Config, parse_config
from tests.deploy.conftest import CHART, VALUES_1000, Run, by_kind, named, render

#: Kubernetes minors the rendered objects must be valid for (the chart says >= 1.29)
KUBERNETES = ["1.33.0", "1.34.0", "1.35.0"]


def test_lint_passes_for_the_defaults_and_the_1000_user_site(helm: Run) -> None:
    for extra in ([], ["-f", str(VALUES_1000)]):
        done = helm("lint", "--strict", str(CHART), *extra)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("setting", "where"),
    [
        ("config.quotas.default.cores=lots", "/config/quotas/default/cores"),
        ("config.quotas.default.memory=lots", "/config/quotas/default/memory"),
        ("config.auth.provider=ldap", "/config/auth/provider"),
        ("config.hub.spawn_timeout=-1", "/config/hub/spawn_timeout"),
        ("config.quotas.defaults.cores=2", "/config/quotas"),  # a misspelt key
        ("hub.resources.limits.memory=lots", "/hub/resources/limits/memory"),
        ("proxy.service.type=Magic", "/proxy/service/type"),
    ],
)
def test_a_wrong_value_fails_lint_and_template_naming_it(
    helm: Run, setting: str, where: str
) -> None:
    for command in (["lint", str(CHART)], ["template", "t", str(CHART)]):
        done = helm(*command, "--set", setting)
        assert done.returncode != 0, f"{command[0]} accepted {setting}"
        assert f"at '{where}'" in done.stdout + done.stderr


def test_the_1000_user_site_renders_every_component(objects_1000: list[dict[str, Any]]) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in objects_1000}
    assert {
        ("Deployment", "t-sciplat-hub"),
        ("Deployment", "t-sciplat-proxy"),
        ("Deployment", "t-sciplat-tap"),
        ("Deployment", "t-sciplat-jobs"),
        ("Role", "t-sciplat-hub-prepuller"),
        ("ConfigMap", "t-sciplat-config"),
        ("ClusterRole", "t-sciplat-hub"),
        ("Ingress", "t-sciplat"),
    } <= names
    config = yaml.safe_load(by_kind(objects_1000, "ConfigMap")[0]["data"]["sciplat.yaml"])
    chart = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    site = yaml.safe_load(VALUES_1000.read_text())["config"]
    assert config == helm_merge(chart, site)  # the document, as Helm merges values files


def helm_merge(base: Any, over: Any) -> Any:
    """Helm's merge of values files: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{key: helm_merge(base.get(key), value) for key, value in over.items()}}
    return over


def test_switches_leave_out_what_is_off(helm: Run) -> None:
    objects = render(helm, "--set", "config.services.tap.enabled=false",
                     "--set", "config.services.jobs.enabled=false")  # fmt: skip
    names = {o["metadata"]["name"] for o in objects}
    assert not any(name.endswith(("-tap", "-jobs")) for name in names)
    hub = by_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert not {"SCIPLAT_TAP_URL", "SCIPLAT_JOBS_URL"} & {e["name"] for e in hub["env"]}


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_object_is_valid_kubernetes(
    helm: Run, objects_1000: list[dict[str, Any]], version: str
) -> None:
    for obj in [*objects_1000, *render(helm)]:  # the 1,000-user site and the defaults
        kubernetes_validate.validate(obj, version, strict=True)


def test_validation_would_catch_a_broken_object(objects_1000: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(by_kind(objects_1000, "Deployment")[0])
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limit"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES[-1], strict=True)


def test_lab_network_policies_admit_the_charts_pods(helm: Run) -> None:
    """The lab backend's selectors (config.kubernetes) pick the pods this chart makes, in the
    namespace the defaults expect, and labs may reach TAP and jobs on their ports."""
    objects = render(helm)  # namespace sciplat, the chart's own values
    (config_map,) = by_kind(objects, "ConfigMap")
    config = parse_config(config_map["data"]["sciplat.yaml"])
    labels = {
        o["metadata"]["name"].removeprefix("t-sciplat-"): o["spec"]["template"]["metadata"][
            "labels"
        ]
        for o in by_kind(objects, "Deployment")
    }
    ports = {
        o["metadata"]["name"].removeprefix("t-sciplat-"): o["spec"]["ports"][0]["port"]
        for o in by_kind(objects, "Service")
    }
    peers = {"hub": config.kubernetes.hub, "proxy": config.kubernetes.proxy}
    peers |= {rule.name: rule for rule in config.kubernetes.egress}
    for component in ("hub", "proxy", "tap", "jobs"):
        peer = peers[component]
        assert peer.namespace_labels == {"kubernetes.io/metadata.name": "sciplat"}
        assert peer.pod_labels.items() <= labels[component].items(), component
    for rule in config.kubernetes.egress:
        assert rule.ports == [ports[rule.name]]


def test_the_charts_fallbacks_are_the_config_models_defaults(helm: Run) -> None:
    """Templates read ports, prefixes and switches from `config` with a fallback for keys the
    document leaves out; those fallbacks must be the model's own defaults."""
    defaults = Config()
    objects = render(helm, "--set", "ingress.enabled=true")
    ports = {
        o["metadata"]["name"]: o["spec"]["ports"][0]["port"] for o in by_kind(objects, "Service")
    }
    assert ports["t-sciplat-hub"] == defaults.hub.hub_port
    assert ports["t-sciplat-proxy-api"] == defaults.hub.proxy_api_port
    assert ports["t-sciplat-tap"] == defaults.services.tap.port
    assert ports["t-sciplat-jobs"] == defaults.services.jobs.port
    proxy = named(objects, "Deployment", "t-sciplat-proxy")["spec"]["template"]["spec"]
    assert f"--port={defaults.hub.port}" in proxy["containers"][0]["command"]
    (ingress,) = by_kind(objects, "Ingress")
    paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    assert paths == [defaults.services.tap.prefix, defaults.services.jobs.prefix, "/"]
    assert defaults.services.tap.enabled and defaults.services.jobs.enabled  # rendered above
    assert defaults.kubernetes.prepuller.enabled == any(
        o["metadata"]["name"] == "t-sciplat-hub-prepuller" for o in by_kind(objects, "Role")
    )


def test_the_prepuller_role_is_where_the_backend_puts_the_daemonset(helm: Run) -> None:
    done = helm("template", "t", str(CHART), "--namespace", "elsewhere")
    assert done.returncode == 0, done.stderr
    roles = [o for o in yaml.safe_load_all(done.stdout) if o and o["kind"] == "Role"]
    assert [r["metadata"]["namespace"] for r in roles] == [Config().kubernetes.prepuller.namespace]
