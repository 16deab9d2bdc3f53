"""The builders' objects: equal to the expected JSON files, valid against the schemas of three
Kubernetes minors (strict: no unknown fields), and true to the platform's policy for any user."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sciplat.labs.kubernetes.builders import lab_objects
from sciplat.labs.kubernetes.builders.common import cpu_quantity, memory_quantity
from sciplat.labs.kubernetes.builders.prepuller import build_prepuller
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import NamespaceQuota
from tests.labs.kubernetes.conftest import full_config, lab_spec

DATA = Path(__file__).parents[2] / "data" / "kubernetes"
#: the newest minors whose schemas the installed kubernetes-validate ships
VERSIONS = ("1.35", "1.36", "1.37")
ENFORCE = "pod-security.kubernetes.io/enforce"
QUOTA = NamespaceQuota(cores=4, memory=16 * 1024**3, pods=2, pvcs=1)


def _expect(name: str, objects: Any) -> None:
    """Compare with tests/data/kubernetes/NAME; SCIPLAT_UPDATE_EXPECTED=1 rewrites the file
    (then read the diff before committing it)."""
    path = DATA / name
    text = json.dumps(objects, indent=2, sort_keys=True) + "\n"
    if os.environ.get("SCIPLAT_UPDATE_EXPECTED"):
        path.write_text(text)
    assert json.loads(path.read_text()) == objects


def test_lab_objects_match_the_expected_json() -> None:
    objects = lab_objects(full_config(), lab_spec(), QUOTA)
    _expect("lab-alice.json", objects.all())


def test_defaults_and_a_named_server_match_the_expected_json() -> None:
    spec = lab_spec(user="bob_smith", server="gpu.test")
    objects = lab_objects(KubernetesConfig(), spec, NamespaceQuota(cores=2.5))
    _expect("lab-bob-defaults.json", objects.all())


def test_prepuller_matches_the_expected_json() -> None:
    config = full_config()
    images = [config.image.reference(t) for t in ("w_2026_47", "r28_0_0", "w_2026_47")]
    _expect("prepuller.json", build_prepuller(config, images))


@pytest.mark.parametrize("version", VERSIONS)
def test_objects_are_valid_kubernetes(version: str) -> None:
    config = full_config()
    for objects in (
        lab_objects(config, lab_spec(), QUOTA),
        lab_objects(KubernetesConfig(), lab_spec("bob_smith", "gpu.test"), NamespaceQuota()),
    ):
        for obj in objects.all():
            kubernetes_validate.validate(obj, version, strict=True)
    kubernetes_validate.validate(build_prepuller(config, ["r/l:a"]), version, strict=True)


def test_the_validator_catches_a_wrong_object() -> None:
    pod = lab_objects(full_config(), lab_spec(), QUOTA).pod
    pod["spec"]["containers"][0]["securityContext"]["dropCapabilities"] = ["ALL"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, VERSIONS[-1], strict=True)


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


usernames = st.from_regex(r"\A[a-z][a-z0-9_-]{0,31}\Z")
servers = st.one_of(st.just(""), st.from_regex(r"\A[A-Za-z0-9._-]{1,40}\Z"))


@settings(max_examples=60, deadline=None)
@given(user=usernames, server=servers, uid=st.integers(1000, 2**31 - 1))
def test_policy_holds_for_every_user(user: str, server: str, uid: int) -> None:
    objects = lab_objects(full_config(), lab_spec(user, server, uid=uid, gid=uid), QUOTA)
    namespace = objects.namespace["metadata"]["name"]
    pod = objects.pod
    assert pod["metadata"]["namespace"] == namespace
    assert objects.quota["metadata"]["namespace"] == namespace
    assert objects.network_policy["metadata"]["namespace"] == namespace
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == uid
    assert security["runAsGroup"] == uid
    assert pod["spec"]["automountServiceAccountToken"] is False
    for container in pod["spec"]["containers"]:
        ctx = container["securityContext"]
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert "add" not in ctx["capabilities"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert {"/tmp", f"/home/{user}"} <= writable
        assert container["resources"]["limits"] == container["resources"]["requests"]
    policy = objects.network_policy["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert _labels_match(policy["podSelector"]["matchLabels"], pod["metadata"]["labels"])
    sources = [peer["podSelector"]["matchLabels"] for peer in policy["ingress"][0]["from"]]
    assert sources == [
        {"app.kubernetes.io/component": "hub"},
        {"app.kubernetes.io/component": "proxy"},
    ]
    assert len(policy["ingress"]) == 1
    assert objects.quota["spec"]["hard"]["pods"] == "2"
    assert objects.namespace["metadata"]["labels"][ENFORCE] == "restricted"


def test_host_path_volumes_only_warn_about_the_restricted_profile() -> None:
    volume = {"name": "home", "kind": "host_path", "mount_path": "{home}", "path": "/srv/{user}"}
    objects = lab_objects(full_config(volumes=[volume]), lab_spec(), QUOTA)
    labels = objects.namespace["metadata"]["labels"]
    assert ENFORCE not in labels
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert objects.pod["spec"]["volumes"][1]["hostPath"]["path"] == "/srv/alice"


def test_a_root_lab_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be 0"):
        lab_objects(full_config(), lab_spec(uid=0), QUOTA)


def test_unlimited_quota_keys_are_left_out() -> None:
    quota = lab_objects(full_config(), lab_spec(), NamespaceQuota(pods=1)).quota
    assert quota["spec"]["hard"] == {"pods": "1"}


def test_the_pod_listens_on_all_addresses_of_its_own_network() -> None:
    pod = lab_objects(full_config(), lab_spec(), QUOTA).pod
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:41234/user/alice/"


@pytest.mark.parametrize(("cores", "text"), [(1, "1"), (1.5, "1500m"), (0.25, "250m"), (16, "16")])
def test_cpu_quantities(cores: float, text: str) -> None:
    assert cpu_quantity(cores) == text


@pytest.mark.parametrize(
    ("size", "text"),
    [(4 * 1024**3, "4Gi"), (1536 * 1024**2, "1536Mi"), (1000, "1000"), (2 * 1024**4, "2Ti")],
)
def test_memory_quantities(size: int, text: str) -> None:
    assert memory_quantity(size) == text
