"""What every pod of the chart promises: not root, no capabilities, no privilege escalation,
a read-only root filesystem, resources, probes, and the API token only where it is needed."""

from __future__ import annotations

from typing import Any

from sciplat.config import parse_config
from sciplat.labs.kubernetes.backend import KubernetesBackend
from sciplat.labs.kubernetes.builders.prepuller import build_prepuller
from sciplat.labs.kubernetes.models import LabGroup, NamespaceQuota
from sciplat.labs.kubernetes.storage.client import KubernetesApi
from tests.deploy.conftest import Run, by_kind, named, render
from tests.labs.kubernetes.conftest import lab_spec
from tests.support.fake_kubernetes import FakeKubernetes

WORKLOADS = ("Deployment", "DaemonSet")


def pods(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"])
            for kind in WORKLOADS for o in by_kind(objects, kind)]  # fmt: skip


def test_every_container_is_locked_down(objects_1000: list[dict[str, Any]]) -> None:
    seen = 0
    for name, pod in pods(objects_1000):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] >= 10000, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["privileged"] is False, where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, where
            seen += 1
    assert seen == 4  # hub, proxy, TAP, jobs


def test_only_the_hub_and_jobs_mount_an_api_token(objects_1000: list[dict[str, Any]]) -> None:
    mounts = {name: pod["automountServiceAccountToken"] for name, pod in pods(objects_1000)}
    assert mounts == {"t-sciplat-hub": True, "t-sciplat-jobs": True,  # start labs and jobs
                      "t-sciplat-proxy": False, "t-sciplat-tap": False}  # fmt: skip
    (account,) = by_kind(objects_1000, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_every_container_names_a_pinned_image_and_a_pull_policy(
    helm: Run, objects_1000: list[dict[str, Any]]
) -> None:
    # Helm applies only values.yaml's defaults, never the values model's: a key missing there
    # would render empty
    for objects in (objects_1000, render(helm)):
        for name, pod in pods(objects):
            for container in pod["containers"]:
                assert container["imagePullPolicy"] in ("Always", "IfNotPresent", "Never"), name
                assert not container["image"].endswith((":", ":latest")), name


def test_deployments_have_probes(objects_1000: list[dict[str, Any]]) -> None:
    for deployment in by_kind(objects_1000, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container


def test_secrets_stay_out_of_the_config_map(objects_1000: list[dict[str, Any]]) -> None:
    (config_map,) = by_kind(objects_1000, "ConfigMap")
    assert "postgresql" not in config_map["data"]["sciplat.yaml"]
    hub = named(objects_1000, "Deployment", "t-sciplat-hub")
    env = {e["name"]: e for e in hub["spec"]["template"]["spec"]["containers"][0]["env"]}
    secret = {name: var["valueFrom"]["secretKeyRef"] for name, var in env.items()
              if name.endswith("_URL") and "valueFrom" in var}  # fmt: skip
    assert secret == {
        "SCIPLAT_STATE_URL": {"name": "sciplat-db", "key": "state-url"},
        "SCIPLAT_HUB_DB_URL": {"name": "sciplat-db", "key": "hub-url"},
    }


def test_the_proxy_api_is_open_to_the_hub_only(objects_1000: list[dict[str, Any]]) -> None:
    policy = named(objects_1000, "NetworkPolicy", "t-sciplat-proxy")
    public, api = policy["spec"]["ingress"]
    assert "from" not in public
    assert api["ports"] == [{"port": 8001, "protocol": "TCP"}]
    assert api["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "sciplat", "app.kubernetes.io/instance": "t",
        "app.kubernetes.io/component": "hub"}}}]  # fmt: skip


def test_the_hub_role_holds_only_what_labs_need(objects_1000: list[dict[str, Any]]) -> None:
    (role,) = by_kind(objects_1000, "ClusterRole")
    granted = {(group, resource, verb) for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]
               for verb in rule["verbs"]}  # fmt: skip
    assert not any("*" in part for item in granted for part in item)
    resources = {resource for _, resource, _ in granted}
    assert resources == {"namespaces", "pods", "persistentvolumeclaims", "resourcequotas",
                         "networkpolicies", "events", "pods/log", "secrets",
                         "configmaps"}  # fmt: skip
    assert {verb for *_, verb in granted} == {"get", "list", "create", "update", "delete"}
    assert {verb for _, resource, verb in granted if resource == "events"} == {"list"}
    assert {verb for _, resource, verb in granted if resource == "pods/log"} == {"get"}
    # secrets and config maps are only written, never read or listed, in any namespace
    for kind in ("secrets", "configmaps"):
        assert {verb for _, resource, verb in granted if resource == kind} == {"create", "update"}
    roles = {role["metadata"]["name"]: role for role in by_kind(objects_1000, "Role")}
    assert roles["t-sciplat-hub-prepuller"]["rules"] == [
        {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "create", "update"]}
    ]
    # the one secret the hub reads: the pull secret's original, by name, in its namespace
    pull = roles["t-sciplat-hub-pull-secrets"]
    assert pull["metadata"]["namespace"] == "sciplat"
    assert pull["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                              "resourceNames": ["registry-credentials"]}]  # fmt: skip
    assert len(roles) == 2


async def test_every_call_the_backend_makes_is_granted(objects_1000: list[dict[str, Any]]) -> None:
    """A lab start and stop, and a prepuller sync, of the 1,000-user site against the fake API
    server: each request, as (namespace, resource, verb, name), is allowed by the chart's
    ClusterRole or by a Role of that namespace (with its resourceNames)."""
    (config_map,) = by_kind(objects_1000, "ConfigMap")
    site = parse_config(config_map["data"]["sciplat.yaml"]).kubernetes
    config = site.model_copy(update={"poll_seconds": 0.001})
    rules = [("", r) for r in by_kind(objects_1000, "ClusterRole")[0]["rules"]]
    rules += [(role["metadata"]["namespace"], r) for role in by_kind(objects_1000, "Role")
              for r in role["rules"]]  # fmt: skip

    def allowed(namespace: str, resource: str, verb: str, name: str) -> bool:
        return any(
            where in ("", namespace) and resource in rule["resources"] and verb in rule["verbs"]
            and name in rule.get("resourceNames", [name]) for where, rule in rules
        )  # fmt: skip

    async with FakeKubernetes() as fake:
        fake.add({"kind": "Namespace", "metadata": {"name": "sciplat"}}, {"phase": "Active"})
        for name in config.image.pull_secrets:
            meta = {"name": name, "namespace": "sciplat"}
            fake.add({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
                      "data": {"a": "b"}, "metadata": meta})  # fmt: skip
        api = KubernetesApi.for_host(fake.url)
        backend = KubernetesBackend(config, api, lambda user: NamespaceQuota(pods=1),
                                    groups_of=lambda user: [LabGroup("astro", 300001)])  # fmt: skip
        state = await backend.start(lab_spec("user0001"), lambda percent, line: None)
        fake.terminate_pod(state.extra["kubernetes"]["namespace"], "lab", 1, "Error")
        await backend.poll(state)  # reads the log of the ended lab
        await backend.stop(state)
        for _ in range(2):
            await api.apply(build_prepuller(config, ["registry.example.org/l:a"]))
        await api.close()
    verbs = {"POST": "create", "PUT": "update", "DELETE": "delete"}
    seen = set()
    for call in fake.calls:
        verb = verbs.get(call.method) or ("get" if call.name else "list")
        seen.add((call.plural, verb))
        assert allowed(call.namespace, call.plural, verb, call.name), f"not granted: {call}"
    assert {("secrets", "get"), ("secrets", "create"), ("configmaps", "create"),
            ("daemonsets", "update"), ("pods/log", "get")} <= seen  # fmt: skip
