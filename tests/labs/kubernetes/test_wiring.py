"""The factory builds the Kubernetes backend from sciplat.yaml: the namespace quota comes from
the same quota resolver as every other limit, and the API from the configured kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from aiohttp import web

from sciplat.errors import InvalidOptionError, LabError
from sciplat.factory import Factory
from sciplat.identity.models import Group, User
from sciplat.labs.kubernetes.backend import KubernetesBackend
from sciplat.labs.kubernetes.models import LabGroup, NamespaceQuota
from sciplat.labs.kubernetes.wiring import lab_groups, namespace_quota
from tests.labs.kubernetes.conftest import lab_spec
from tests.support.fake_kubernetes import FakeKubernetes, serve
from tests.support.fake_registry import FakeRegistry

CONFIG = """
identity: {{host_accounts: "off"}}
volumes: {{root: {root}}}
sizes: [{{name: small, cpu: 1, memory: 2GiB, default: true}}]
hub: {{lab_backend: kubernetes}}
kubernetes:
  kubeconfig: {kubeconfig}
  namespace_prefix: t
  poll_seconds: 0.001
quotas:
  default: {{labs: 2, cores: 4, memory: 8GiB}}
  groups:
    astro: {{cores: 8}}
"""


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "hub", "user": {"token": "not-checked"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "hub"}}],
        "current-context": "fake",
    }))  # fmt: skip
    return path


def factory_for(tmp_path: Path, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> Factory:
    monkeypatch.delenv("SCIPLAT_CONFIG", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    text = CONFIG.format(root=tmp_path / "storage", kubeconfig=kubeconfig)
    (data / "sciplat.yaml").write_text(text)
    return Factory.from_data_dir(data)


async def test_the_factory_wires_quota_and_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeKubernetes() as fake:
        factory = factory_for(tmp_path, write_kubeconfig(tmp_path / "kc", fake.url), monkeypatch)
        factory.identity.sync_config_groups()
        factory.identity.add_user("alice", ["astro"])
        backend = factory.lab_backend
        assert isinstance(backend, KubernetesBackend)
        assert backend.quota_for("alice") == NamespaceQuota(8.0, 8 * 1024**3, 2, 1)
        state = await backend.start(lab_spec(), lambda percent, line: None)
        quota = fake.get("ResourceQuota", "t-alice", "sciplat-quota")
        assert quota is not None
        assert quota["spec"]["hard"]["limits.cpu"] == "8"
        await backend.stop(state)
        await backend.api.close()


async def test_the_lab_service_sees_the_pod_answer_as_for_a_local_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readiness is the lab service's, unchanged: it probes the state's ip and port, which
    for a pod are the pod IP and the port the hub picked (here a server on loopback plays
    the lab's server)."""

    async def api(request: web.Request) -> web.Response:
        return web.json_response({"version": "x"})

    app = web.Application()
    app.router.add_get("/user/alice/api", api)
    runner, url = await serve(app)
    port = int(url.rsplit(":", 1)[1])
    async with FakeKubernetes() as fake:
        fake.pod_ip = "127.0.0.1"
        factory = factory_for(tmp_path, write_kubeconfig(tmp_path / "kc", fake.url), monkeypatch)
        factory.identity.add_user("alice")
        backend = factory.lab_backend
        state = await backend.start(lab_spec(port=port), lambda percent, line: None)
        assert (state.ip, state.port) == ("127.0.0.1", port)
        await factory.labs.wait_ready(state, "/user/alice/")
        await backend.stop(state)
        await factory.kubernetes.api.close()
    await runner.cleanup()


async def test_a_missing_kubeconfig_says_which_setting_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = factory_for(tmp_path, tmp_path / "missing", monkeypatch)
    factory.identity.add_user("alice")
    with pytest.raises(LabError, match=r"cannot load .*missing.*kubernetes.kubeconfig"):
        await factory.lab_backend.start(lab_spec(), lambda percent, line: None)


def test_lab_groups_follow_the_group_storage_quota() -> None:
    user = User("alice", 200001, 200001, groups=(Group("astro", 300001), Group("tmp", 300002)))
    limits = {"astro": None, "tmp": 0}
    assert lab_groups(user, limits.__getitem__) == [
        LabGroup("astro", 300001, directory=True),
        LabGroup("tmp", 300002, directory=False),
    ]


async def test_users_groups_from_the_identity_and_quotas_reach_the_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The factory passes the backend the users' groups (lab_groups over the identity service
    and the group_storage resolver): names and GIDs from the database, and no directory for a
    group whose group_storage is 0."""
    async with FakeKubernetes() as fake:
        monkeypatch.delenv("SCIPLAT_CONFIG", raising=False)
        data = tmp_path / "data"
        data.mkdir()
        text = CONFIG.format(root=tmp_path / "storage", kubeconfig=tmp_path / "kc")
        text = text.replace(
            "  namespace_prefix: t\n",
            "  namespace_prefix: t\n  group_directories: {kind: host_path, path: /srv/groups}\n",
        )
        (data / "sciplat.yaml").write_text(text + "    scratch: {group_storage: 0}\n")
        write_kubeconfig(tmp_path / "kc", fake.url)
        factory = Factory.from_data_dir(data)
        assert factory.config.kubernetes.group_directories is not None
        factory.identity.add_group("astro")
        factory.identity.add_group("scratch")
        user = factory.identity.add_user("alice", ["astro", "scratch"])
        backend = factory.lab_backend  # as the hub builds it
        assert isinstance(backend, KubernetesBackend)
        spec = lab_spec(uid=user.uid, gid=user.gid, groups=tuple(user.supplementary_gids))
        state = await backend.start(spec, lambda percent, line: None)
        nss = fake.get("ConfigMap", "t-alice", "sciplat-nss")
        assert nss is not None
        gids = {g.name: g.gid for g in user.groups}
        for name in ("astro", "scratch"):
            assert f"{name}:x:{gids[name]}:alice" in nss["data"]["group"].splitlines()
        pod = fake.get("Pod", "t-alice", "lab")
        assert pod is not None
        mounts = [m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]]
        assert "/home/alice/groups/astro" in mounts
        assert "/home/alice/groups/scratch" not in mounts
        await backend.stop(state)
        await factory.kubernetes.api.close()


def test_namespace_quota_from_limits() -> None:
    assert namespace_quota({"cores": 2, "memory": None, "labs": 1}, 0) == NamespaceQuota(
        2.0, None, 1, 0
    )


async def test_the_spawn_menu_and_a_start_come_from_the_registry_without_host_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same LabService as for local labs: the menu is the registry's tags, the choice is
    checked against them, and nothing is made on the hub's disk (the pod mounts the home)."""

    async def api(request: web.Request) -> web.Response:
        return web.json_response({"version": "x"})

    app = web.Application()
    app.router.add_get("/user/alice/api", api)
    runner, url = await serve(app)
    port = int(url.rsplit(":", 1)[1])
    tags = ["r28_0_0", "w_2026_46", "w_2026_47", "d_2026_11_27"]
    async with FakeKubernetes() as fake, FakeRegistry({"sciplat/lab": tags}) as registry:
        fake.pod_ip = "127.0.0.1"
        fake.add({"kind": "Namespace", "metadata": {"name": "sciplat"}})
        kubeconfig = write_kubeconfig(tmp_path / "kc", fake.url)
        monkeypatch.delenv("SCIPLAT_CONFIG", raising=False)
        data = tmp_path / "data"
        data.mkdir()
        text = CONFIG.format(root=tmp_path / "storage", kubeconfig=kubeconfig).replace(
            "  poll_seconds: 0.001\n",
            "  poll_seconds: 0.001\n"
            f"  image: {{registry_url: '{registry.url}', recommended: r28_0_0}}\n",
        )
        (data / "sciplat.yaml").write_text(text)
        factory = Factory.from_data_dir(data)
        user = factory.identity.add_user("alice")
        labs = factory.labs

        await labs.refresh_environments()
        menu = labs.menu()
        assert menu.default == "r28_0_0"
        assert {e.name for e in labs.environments.environments} == set(tags)
        with pytest.raises(InvalidOptionError, match="w_1999_01"):
            labs.parse_options(user, {"environment": ["w_1999_01"]})

        lines: list[str] = []
        state = await labs.start(
            user, "", {"JUPYTERHUB_SERVICE_PREFIX": "/user/alice/"},
            lambda percent, line: lines.append(line), port=port,
            options={"environment": "w_2026_47", "reset": "on"},
        )  # fmt: skip
        assert (state.ip, state.port) == ("127.0.0.1", port)
        pod = fake.get("Pod", "t-alice", state.extra["kubernetes"]["pod"])
        assert pod is not None
        assert pod["spec"]["containers"][0]["image"].endswith("sciplat/lab:w_2026_47")
        assert not (tmp_path / "storage").exists(), "nothing is made on the hub's disk"
        assert any("not available for labs on Kubernetes" in line for line in lines)
        await labs.stop(state)
        await factory.kubernetes.api.close()
    await runner.cleanup()
