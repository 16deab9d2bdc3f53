"""Opt-in tests against a real cluster, for what the in-memory fake does not check: admission
(Pod Security "restricted" on our namespaces), defaulting (our fields survive the API
server's), quota accounting, and RBAC (every verb the backend uses, with the credentials the
kubeconfig gives; run them with the hub's own service account to check its Role).

    SCIPLAT_TEST_KUBECONFIG=~/.kube/config .venv/bin/python -m pytest -m kubernetes \\
        tests/labs/kubernetes/test_real_cluster.py

``SCIPLAT_TEST_IMAGE`` (default ``docker.io/library/busybox:1.36``) is the image the test lab
runs, with ``sleep 600`` as its command. Every namespace made here is deleted at the end.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sciplat.errors import LabError
from sciplat.labs.kubernetes.backend import KubernetesBackend
from sciplat.labs.kubernetes.builders import lab_objects
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import NamespaceQuota
from sciplat.labs.kubernetes.storage.client import KubernetesApi, KubernetesApiError
from sciplat.labs.models import LabSpec
from tests.labs.kubernetes.conftest import GROUPS, lab_spec

KUBECONFIG = os.environ.get("SCIPLAT_TEST_KUBECONFIG", "")
IMAGE = os.environ.get("SCIPLAT_TEST_IMAGE", "docker.io/library/busybox:1.36")

pytestmark = [
    pytest.mark.kubernetes,
    pytest.mark.skipif(
        not (KUBECONFIG and Path(KUBECONFIG).expanduser().is_file()),
        reason="needs a real cluster: set SCIPLAT_TEST_KUBECONFIG to a kubeconfig file",
    ),
]


def cluster_config() -> KubernetesConfig:
    registry, _, rest = IMAGE.partition("/")
    repository = rest.rsplit(":", 1)[0]
    return KubernetesConfig.model_validate({
        "namespace_prefix": "sptest",
        "kubeconfig": str(Path(KUBECONFIG).expanduser()),
        "image": {"registry": registry, "repository": repository},
        "volumes": [],
        "start_timeout": 240,
    })  # fmt: skip


def cluster_spec(user: str, server: str = "") -> LabSpec:
    return lab_spec(
        user,
        server,
        environment=IMAGE.rsplit(":", 1)[1],
        command=("sleep", "600"),
        home=Path("/tmp"),  # no volumes here: the writable emptyDir is the home
    )


@pytest.fixture
def user() -> str:
    return f"t{secrets.token_hex(4)}"


@pytest.fixture
async def backend(user: str) -> AsyncIterator[KubernetesBackend]:
    """A backend whose user namespace is deleted after the test, whatever happened."""
    config = cluster_config()
    api = KubernetesApi(kubeconfig=config.kubeconfig)
    yield KubernetesBackend(
        config,
        api,
        lambda name: NamespaceQuota(cores=2, memory=2**31, pods=1),
        groups_of=lambda name: GROUPS,
    )
    await api.delete("Namespace", "", f"sptest-{user}")
    await api.close()


def quiet(percent: int, line: str) -> None:
    """Progress goes nowhere."""


async def test_a_lab_passes_admission_and_keeps_its_security_fields(
    backend: KubernetesBackend, user: str
) -> None:
    spec = cluster_spec(user)
    state = await backend.start(spec, quiet)
    namespace = state.extra["kubernetes"]["namespace"]
    pod = await backend.api.read("Pod", namespace, "lab")
    assert pod is not None
    built = lab_objects(backend.config, spec, NamespaceQuota()).pod
    container, wanted = pod["spec"]["containers"][0], built["spec"]["containers"][0]
    assert container["securityContext"] == wanted["securityContext"]
    for key, value in built["spec"]["securityContext"].items():
        assert pod["spec"]["securityContext"][key] == value
    assert await backend.poll(state) is None
    await backend.stop(state, now=True)
    assert await backend.poll(state) == 0


async def test_the_cluster_refuses_a_root_pod_in_a_lab_namespace(
    backend: KubernetesBackend, user: str
) -> None:
    spec = cluster_spec(user)
    state = await backend.start(spec, quiet)
    pod = lab_objects(backend.config, spec, NamespaceQuota()).pod
    pod["metadata"]["name"] = "root"
    pod["spec"]["securityContext"].update(runAsUser=0, runAsNonRoot=False)
    pod["spec"]["containers"][0]["securityContext"].update(runAsNonRoot=False)
    with pytest.raises(KubernetesApiError) as caught:
        await backend.api.create(pod)
    assert caught.value.status == 403
    assert "PodSecurity" in caught.value.detail or "violates" in caught.value.detail
    await backend.stop(state, now=True)


async def test_the_resource_quota_stops_a_second_lab(backend: KubernetesBackend, user: str) -> None:
    first = await backend.start(cluster_spec(user), quiet)
    with pytest.raises(LabError, match="all of your quota"):
        await backend.start(cluster_spec(user, "second"), quiet)
    await backend.stop(first, now=True)


async def test_the_lab_knows_its_user_and_groups(backend: KubernetesBackend, user: str) -> None:
    """The image has no entry for the platform's UID: /etc/passwd and /etc/group come from
    the namespace's ConfigMap. A lab that runs ``id`` and exits shows its answer in the log
    tail of the start's error."""
    spec = lab_spec(user, "", environment=IMAGE.rsplit(":", 1)[1], home=Path("/tmp"),
                    command=("sh", "-c", "id; whoami"))  # fmt: skip
    with pytest.raises(LabError) as caught:
        await backend.start(spec, quiet)
    assert f"uid=200001({user}) gid=200001({user})" in caught.value.log_tail
    assert "300001(astro)" in caught.value.log_tail
    assert "300003(archive)" in caught.value.log_tail
    assert caught.value.log_tail.rstrip().endswith(user)
