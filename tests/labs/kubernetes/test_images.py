"""Environments on Kubernetes: registry tags → the spawn menu, and the prepuller's DaemonSet,
against a fake registry server and the fake API server."""

from __future__ import annotations

import datetime as dt

import pytest

from sciplat.labs.kubernetes.builders.prepuller import PREPULLER_NAME
from sciplat.labs.kubernetes.config import KubernetesConfig, LabImage
from sciplat.labs.kubernetes.images import ImageCatalog
from sciplat.labs.kubernetes.registry import environments_from_tags, parse_tag
from sciplat.labs.kubernetes.storage.client import KubernetesApi
from sciplat.labs.kubernetes.storage.registry import RegistryClient, RegistryError
from tests.support.fake_kubernetes import FakeKubernetes
from tests.support.fake_registry import FakeRegistry

TAGS = [
    "r27_0_0", "r28_0_0", "r28_0_1_rc1", "r28_0_1",
    "w_2026_45", "w_2026_46", "w_2026_47",
    "d_2026_11_25", "d_2026_11_26", "d_2026_11_27", "d_2026_11_28",
    "exp_ticket-123", "latest", "recommended", "w_2026_54", "d_2026_13_01",
    "sha256-0123", "exp_" + "x" * 40,
]  # fmt: skip


@pytest.mark.parametrize(
    ("tag", "kind", "label", "created"),
    [
        ("r28_0_1", "release", "Release r28.0.1", None),
        ("r28_0_1_rc2", "experimental", "Release candidate r28.0.1 rc2", None),
        ("w_2026_47", "weekly", "Weekly 2026_47", dt.date(2026, 11, 16)),
        ("d_2026_11_27", "daily", "Daily 2026_11_27", dt.date(2026, 11, 27)),
        ("exp_ticket-123", "experimental", "Experimental ticket-123", None),
    ],
)
def test_tags_are_parsed(tag: str, kind: str, label: str, created: dt.date | None) -> None:
    parsed = parse_tag(tag)
    assert parsed is not None
    assert (parsed.kind, parsed.label, parsed.created) == (kind, label, created)


@pytest.mark.parametrize("tag", ["latest", "recommended", "w_2026_54", "d_2026_13_01", "R28_0_0"])
def test_other_tags_are_not_offered(tag: str) -> None:
    assert parse_tag(tag) is None


def test_the_menu_from_tags_is_the_local_menu_with_images() -> None:
    image = LabImage(recommended="r28_0_0", keep={"daily": 2})
    envs = environments_from_tags(TAGS, image)
    names = [e.name for e in envs]
    assert names[:3] == ["r28_0_1", "r28_0_0", "r27_0_0"]
    assert "d_2026_11_26" not in names, "only the two newest dailies are kept"
    assert {"latest", "recommended", "w_2026_54", "sha256-0123"}.isdisjoint(names)
    assert all(e.path == image.prefix for e in envs)
    assert [e.name for e in envs if e.recommended] == ["r28_0_0"]


async def test_catalog_reads_a_paginated_registry_behind_a_token_and_builds_the_menu() -> None:
    config = KubernetesConfig(image=LabImage(recommended="r28_0_0", repository="sciplat/lab"))
    async with FakeRegistry({"sciplat/lab": TAGS}, page_size=4, auth=True) as registry:
        catalog = ImageCatalog(
            config, RegistryClient(registry.url, "sciplat/lab"), KubernetesApi.for_host("x")
        )
        await catalog.refresh()
        assert sum("/tags/list" in r for r in registry.requests) >= len(TAGS) // 4
        assert any(r.startswith("/token?") for r in registry.requests)
    menu = catalog.menu()
    radio = [e.name for e in menu.radio]
    # recommended, newest release, two newest weeklies, three newest dailies
    assert radio == [
        "r28_0_0", "r28_0_1", "w_2026_47", "w_2026_46", "d_2026_11_28", "d_2026_11_27",
        "d_2026_11_26",
    ]  # fmt: skip
    groups = dict(menu.dropdown)
    assert {e.name for e in groups["experimental"]} == {"exp_ticket-123", "r28_0_1_rc1"}
    assert catalog.prepull_images()[0] == "ghcr.io/sciplat/lab:r28_0_0"


async def test_a_missing_repository_or_registry_is_a_clear_error() -> None:
    async with FakeRegistry({"sciplat/lab": TAGS}) as registry:
        with pytest.raises(RegistryError, match=r"answered 404.*kubernetes.image.repository"):
            await RegistryClient(registry.url, "other/lab").tags()
        catalog = ImageCatalog(
            KubernetesConfig(),
            RegistryClient(registry.url, "sciplat/lab"),
            KubernetesApi.for_host("x"),
        )
        registry.repositories["sciplat/lab"] = ["latest"]
        with pytest.raises(RegistryError, match="no tag the menu can offer"):
            await catalog.refresh()
    with pytest.raises(RegistryError, match="cannot be reached"):
        await RegistryClient("http://127.0.0.1:1", "sciplat/lab").tags()


async def test_the_prepuller_follows_the_menu() -> None:
    config = KubernetesConfig(image=LabImage(registry="reg.example.org"))
    async with FakeKubernetes() as fake, FakeRegistry({"sciplat/lab": TAGS}) as registry:
        api = KubernetesApi.for_host(fake.url)
        fake.add({"kind": "Namespace", "metadata": {"name": "sciplat"}})
        catalog = ImageCatalog(config, RegistryClient(registry.url, "sciplat/lab"), api)
        await catalog.refresh()
        await catalog.sync_prepuller()
        daemonset = fake.get("DaemonSet", "sciplat", PREPULLER_NAME)
        assert daemonset is not None
        pulled = [c["image"] for c in daemonset["spec"]["template"]["spec"]["initContainers"]]
        assert sorted(pulled) == sorted(catalog.prepull_images())
        assert len(pulled) == 6
        registry.repositories["sciplat/lab"] = [*TAGS, "w_2026_48"]
        await catalog.refresh()
        await catalog.sync_prepuller()
        daemonset = fake.get("DaemonSet", "sciplat", PREPULLER_NAME)
        assert daemonset is not None
        pulled = [c["image"] for c in daemonset["spec"]["template"]["spec"]["initContainers"]]
        assert "reg.example.org/sciplat/lab:w_2026_48" in pulled
        assert "reg.example.org/sciplat/lab:w_2026_46" not in pulled
        await api.close()


async def test_a_failed_refresh_keeps_the_last_good_menu() -> None:
    async with FakeRegistry({"sciplat/lab": TAGS}) as registry:
        catalog = ImageCatalog(
            KubernetesConfig(),
            RegistryClient(registry.url, "sciplat/lab"),
            KubernetesApi.for_host("x"),
        )
        good = await catalog.refresh()
        del registry.repositories["sciplat/lab"]
        with pytest.raises(RegistryError):
            await catalog.refresh()
    assert catalog.environments == good
    assert catalog.menu().default == "r28_0_1"


async def test_update_refreshes_menu_and_prepuller_and_survives_failures() -> None:
    config = KubernetesConfig()
    async with FakeKubernetes() as fake, FakeRegistry({"sciplat/lab": TAGS}) as registry:
        api = KubernetesApi.for_host(fake.url)
        catalog = ImageCatalog(config, RegistryClient(registry.url, "sciplat/lab"), api)
        assert await catalog.update() is False, "the prepuller's namespace does not exist yet"
        assert catalog.available(catalog.environments[0])
        fake.add({"kind": "Namespace", "metadata": {"name": "sciplat"}})
        assert await catalog.update() is True
        assert fake.names("DaemonSet", "sciplat") == [PREPULLER_NAME]
        del registry.repositories["sciplat/lab"]
        assert await catalog.update() is False
        assert catalog.menu().default == "r28_0_1"
        await api.close()
    unknown = catalog.environments[0].model_copy(update={"name": "w_1999_01"})
    assert not catalog.available(unknown)


async def test_the_prepuller_gets_the_pull_secrets_in_its_own_namespace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its pods can name only Secrets of their namespace: when that is not the platform's,
    the catalog copies the pull secrets there first (and again on each sync)."""
    config = KubernetesConfig.model_validate({
        "image": {"registry": "reg.example.org", "pull_secrets": ["registry-credentials"]},
        "prepuller": {"namespace": "sciplat-prepull"},
    })  # fmt: skip
    async with FakeKubernetes() as fake, FakeRegistry({"sciplat/lab": TAGS}) as registry:
        api = KubernetesApi.for_host(fake.url)
        for namespace in ("sciplat", "sciplat-prepull"):
            fake.add({"kind": "Namespace", "metadata": {"name": namespace}})
        catalog = ImageCatalog(config, RegistryClient(registry.url, "sciplat/lab"), api)
        assert await catalog.update() is False, "the pull secret is missing"
        assert "missing from namespace sciplat" in caplog.text
        assert fake.names("DaemonSet", "sciplat-prepull") == []
        source = {"name": "registry-credentials", "namespace": "sciplat"}
        fake.add({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson", "data": {"a": "b"},
                  "metadata": source})  # fmt: skip
        assert await catalog.update() is True
        copy = fake.get("Secret", "sciplat-prepull", "registry-credentials")
        assert copy is not None and copy["data"] == {"a": "b"}
        assert "sciplat.io/user" not in copy["metadata"]["labels"]
        daemonset = fake.get("DaemonSet", "sciplat-prepull", PREPULLER_NAME)
        assert daemonset is not None
        pod = daemonset["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
        assert await catalog.update() is True, "a second sync replaces the copy"
        await api.close()
