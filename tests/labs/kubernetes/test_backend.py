"""The Kubernetes backend against the in-memory API server (tests/support/fake_kubernetes.py):
spawn, stop, re-spawn, re-attach after a restart, 404/409, failed starts that clean up after
themselves, and a failure injected into every API call a start or a stop makes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from sciplat.errors import LabError
from sciplat.labs.kubernetes.backend import KubernetesBackend
from sciplat.labs.kubernetes.builders import lab_objects
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import LabGroup, NamespaceQuota
from sciplat.labs.kubernetes.storage.client import KubernetesApi
from sciplat.labs.models import LabState
from tests.labs.kubernetes.conftest import GROUPS, full_config, lab_spec
from tests.support.clock import Clock
from tests.support.fake_kubernetes import Call, FakeKubernetes

NS = "sp-alice"
IMAGE = "registry.example.org/sciplat/lab:w_2026_47"


@dataclass
class Lines:
    seen: list[tuple[int, str]] = field(default_factory=list)

    def __call__(self, percent: int, line: str) -> None:
        self.seen.append((percent, line))

    def text(self) -> str:
        return "\n".join(line for _, line in self.seen)


def with_pull_secret(fake: FakeKubernetes, data: str = "eyJhdXRocyI6e319") -> FakeKubernetes:
    """The platform's namespace holding the pull secret full_config() names."""
    if fake.get("Namespace", "", "sciplat") is None:
        fake.add({"kind": "Namespace", "metadata": {"name": "sciplat"}}, {"phase": "Active"})
    fake.add({"kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
              "metadata": {"name": "registry-credentials", "namespace": "sciplat"},
              "data": {".dockerconfigjson": data}})  # fmt: skip
    return fake


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubernetes]:
    async with FakeKubernetes() as server:
        yield with_pull_secret(server)


def make_backend(fake: FakeKubernetes, config: KubernetesConfig | None = None) -> KubernetesBackend:
    config = config or full_config(poll_seconds=0.001)
    return KubernetesBackend(
        config,
        KubernetesApi.for_host(fake.url),
        lambda user: NamespaceQuota(4, 2**34, 2, 1),
        groups_of=lambda user: GROUPS,
    )


@pytest.fixture
async def backend(fake: FakeKubernetes) -> AsyncIterator[KubernetesBackend]:
    made = make_backend(fake)
    yield made
    await made.api.close()


async def test_spawn_creates_every_object_and_reports_pod_events(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    lines = Lines()
    state = await backend.start(lab_spec(), lines)
    assert state.backend == "kubernetes"
    assert state.ip.startswith("10.1.0.")
    assert state.port == 41234
    assert state.extra["kubernetes"]["steps"] == [
        "namespace", "pull-secrets", "quota", "network-policy", "nss", "claims", "pod", "running"
    ]  # fmt: skip
    assert fake.names("Namespace") == ["sciplat", NS]
    assert fake.names("Secret", NS) == ["registry-credentials"]
    assert fake.names("ConfigMap", NS) == ["sciplat-nss"]
    assert fake.names("ResourceQuota", NS) == ["sciplat-quota"]
    assert fake.names("NetworkPolicy", NS) == ["sciplat-labs"]
    assert fake.names("PersistentVolumeClaim", NS) == ["home"]
    assert fake.names("Pod", NS) == ["lab"]
    text = lines.text()
    for step in (
        "Scheduled: Successfully assigned",
        f'Pulling: Pulling image "{IMAGE}"',
        "Started",
    ):
        assert step in text
    percents = [p for p, _ in lines.seen]
    assert percents == sorted(percents)
    assert await backend.poll(state) is None


async def test_stop_removes_the_pod_and_keeps_the_namespace_holding_the_home(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    state = await backend.start(lab_spec(), Lines())
    await backend.stop(state)
    assert fake.names("Pod", NS) == []
    assert fake.names("PersistentVolumeClaim", NS) == ["home"]
    assert await backend.poll(state) == 0
    await backend.stop(state)  # stopping a stopped lab is not an error


async def test_stop_removes_the_namespace_when_nothing_in_it_persists(
    fake: FakeKubernetes,
) -> None:
    config = full_config(poll_seconds=0.001, volumes=[
        {"name": "home", "kind": "host_path", "mount_path": "{home}", "path": "/srv/home/{user}"}
    ])  # fmt: skip
    backend = make_backend(fake, config)
    first = await backend.start(lab_spec(), Lines())
    second = await backend.start(lab_spec(server="big"), Lines())
    await backend.stop(first)
    assert fake.names("Pod", NS) == ["lab-big"], "the other lab keeps the namespace"
    await backend.stop(second, now=True)
    assert fake.names("Namespace") == ["sciplat"]
    await backend.api.close()


async def test_respawn_reattaches_to_the_same_pod_and_replaces_a_different_one(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    await backend.start(lab_spec(), Lines())
    uid = fake.get("Pod", NS, "lab")["metadata"]["uid"]  # type: ignore[index]
    lines = Lines()
    await backend.start(lab_spec(), lines)
    assert fake.get("Pod", NS, "lab")["metadata"]["uid"] == uid  # type: ignore[index]
    assert "Re-attaching" in lines.text()
    await backend.start(lab_spec(size="large"), lines)
    assert fake.get("Pod", NS, "lab")["metadata"]["uid"] != uid  # type: ignore[index]
    assert "Replacing a lab pod" in lines.text()


async def test_a_restarted_hub_finds_the_lab_from_the_saved_state(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    state = await backend.start(lab_spec(), Lines())
    saved = LabState.from_dict(state.to_dict())
    assert saved is not None
    restarted = make_backend(fake)
    assert await restarted.poll(saved) is None
    fake.terminate_pod(NS, "lab", 137, "OOMKilled", log="loading\nKilled")
    assert await restarted.poll(saved) == 137
    assert restarted.usage(saved).oom_kills == 1
    assert restarted.log_tail(saved) == "loading\nKilled"
    await restarted.stop(saved)
    assert fake.names("Pod", NS) == []
    await restarted.api.close()


async def test_a_foreign_namespace_of_the_same_name_is_left_alone(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    fake.add({"kind": "Namespace", "metadata": {"name": NS}})
    with pytest.raises(LabError, match="not made by the platform"):
        await backend.start(lab_spec(), Lines())
    assert fake.names("Pod", NS) == []
    assert fake.names("Secret", NS) == [], "not even the pull secret is copied there"
    assert fake.names("Namespace") == ["sciplat", NS]


async def test_an_unpullable_image_is_explained_and_the_new_namespace_removed(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    fake.unpullable[IMAGE] = "manifest unknown"
    with pytest.raises(LabError, match="could not be downloaded") as caught:
        await backend.start(lab_spec(), Lines())
    assert "w_2026_47" in caught.value.message
    assert "Pick another environment" in caught.value.message
    assert fake.names("Namespace") == ["sciplat"]


async def test_a_quota_refusal_is_explained_and_an_older_namespace_kept(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    state = await backend.start(lab_spec(), Lines())
    fake.fail(
        403, method="POST", plural="pods", reason="Forbidden",
        message='pods "lab-big" is forbidden: exceeded quota: sciplat-quota, requested: '
        "requests.cpu=1500m, used: requests.cpu=3, limited: requests.cpu=4",
    )  # fmt: skip
    with pytest.raises(LabError, match="all of your quota") as caught:
        await backend.start(lab_spec(server="big"), Lines())
    assert "pick a smaller size" in caught.value.message
    assert fake.names("Pod", NS) == ["lab"], "the running lab and its namespace stay"
    assert await backend.poll(state) is None


async def test_no_room_on_any_node_times_out_with_advice(fake: FakeKubernetes) -> None:
    clock = Clock()
    config = full_config(poll_seconds=0.001, start_timeout=30)
    backend = KubernetesBackend(
        config, KubernetesApi.for_host(fake.url), lambda user: NamespaceQuota(), clock
    )
    fake.unschedulable = "0/3 nodes are available: 3 Insufficient cpu."
    lines = Lines()

    def progress(percent: int, line: str) -> None:
        clock.now += 10  # every report costs ten seconds of the start's time
        lines(percent, line)

    with pytest.raises(LabError, match="No node of the cluster had room") as caught:
        await backend.start(lab_spec(), progress)
    assert "Insufficient cpu" in caught.value.message
    assert "FailedScheduling" in lines.text()
    assert fake.names("Namespace") == ["sciplat"]
    await backend.api.close()


async def test_a_start_waits_for_a_terminating_namespace(fake: FakeKubernetes) -> None:
    config = full_config(poll_seconds=0.001, volumes=[])
    backend = make_backend(fake, config)
    state = await backend.start(lab_spec(), Lines())
    fake.terminating_reads = 3
    await backend.stop(state)
    lines = Lines()
    await backend.start(lab_spec(), lines)
    assert "Waiting for the previous namespace" in lines.text()
    assert fake.names("Pod", NS) == ["lab"]
    await backend.api.close()


async def test_an_unreachable_api_is_a_lab_error(backend: KubernetesBackend) -> None:
    backend.api = KubernetesApi.for_host("http://127.0.0.1:1")
    with pytest.raises(LabError, match="did not answer"):
        await backend.start(lab_spec(), Lines())
    state = LabState("kubernetes", "alice", 0, 0, "", 0, "", extra={
        "kubernetes": {"namespace": NS, "pod": "lab"}
    })  # fmt: skip
    assert await backend.poll(state) is None, "an unknown state counts as running"


async def test_a_state_of_another_backend_is_refused(backend: KubernetesBackend) -> None:
    state = LabState("local", "alice", 42, 1, "127.0.0.1", 8888, "/x")
    with pytest.raises(LabError, match="'local' backend"):
        await backend.poll(state)


calls_of_a_start: list[Call] = []


async def _calls_of_a_clean_start(config: KubernetesConfig) -> tuple[int, int]:
    async with FakeKubernetes() as fake:
        backend = make_backend(with_pull_secret(fake), config)
        state = await backend.start(lab_spec(), Lines())
        starting = len(fake.calls)
        calls_of_a_start[:] = fake.calls
        await backend.stop(state)
        await backend.api.close()
        return starting, len(fake.calls) - starting


fake_calls_note = (
    "a start reads and creates the namespace, pull secret, quota, policy, passwd/group, claims "
    "and pod"
)


@pytest.mark.parametrize("volumes", ["pvc", "none"])
async def test_a_failure_in_any_api_call_of_a_start_leaves_nothing_behind(volumes: str) -> None:
    """Every request of a start fails once in turn (500): the start either copes (event
    lists, a pod read) or fails with advice and removes what it made; either way a second
    start works and its stop leaves no pod."""
    changes: dict[str, object] = {"poll_seconds": 0.001}
    if volumes == "none":
        changes["volumes"] = []
    config = full_config(**changes)
    starting, _ = await _calls_of_a_clean_start(config)
    assert starting >= 11, fake_calls_note
    assert {
        "GET secrets sciplat/registry-credentials",
        "POST secrets sp-alice",
        "POST configmaps sp-alice",
    } <= set(map(str, calls_of_a_start)), fake_calls_note
    outcomes = []
    for nth in range(starting):
        async with FakeKubernetes() as fake:
            fake.fail(500, nth=nth, message="etcdserver: request timed out")
            backend = make_backend(with_pull_secret(fake), config)
            message = ""
            try:
                await backend.start(lab_spec(), Lines())
            except LabError as err:
                message = err.message
            outcomes.append("failed" if message else "coped")
            if message:
                assert "Try again" in message
                assert fake.names("Pod", NS) == [], f"call {nth} ({fake.calls[nth]}) left a pod"
                assert fake.names("Namespace") == ["sciplat"], f"call {nth} left a namespace"
            state = await backend.start(lab_spec(), Lines())
            await backend.stop(state)
            assert fake.names("Pod", NS) == []
            await backend.api.close()
    assert "failed" in outcomes
    assert "coped" in outcomes


async def test_a_failure_in_any_api_call_of_a_stop_can_be_retried() -> None:
    config = full_config(poll_seconds=0.001, volumes=[])
    starting, stopping = await _calls_of_a_clean_start(config)
    for nth in range(starting, starting + stopping):
        async with FakeKubernetes() as fake:
            backend = make_backend(with_pull_secret(fake), config)
            state = await backend.start(lab_spec(), Lines())
            fake.fail(503, nth=nth, reason="ServiceUnavailable")
            message = "Try again"
            try:
                await backend.stop(state)
            except LabError as err:
                message = err.message
            assert "Try again" in message
            await backend.stop(state)
            assert fake.names("Pod", NS) == []
            assert fake.names("Namespace") == ["sciplat"]
            await backend.api.close()


async def test_objects_left_by_a_hub_that_died_mid_start_are_adopted(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    """The hub was killed after creating the pod: no state was saved. The next start finds
    every object by its name and re-attaches instead of starting a second lab."""
    objects = lab_objects(backend.config, lab_spec(), NamespaceQuota(pods=1))
    fake.add(objects.namespace, {"phase": "Active"})
    fake.add(objects.quota)
    fake.add(objects.pod, {"phase": "Running", "podIP": "10.9.9.9"})
    lines = Lines()
    state = await backend.start(lab_spec(), lines)
    assert state.ip == "10.9.9.9"
    assert "Re-attaching" in lines.text()
    assert state.extra["kubernetes"]["created_namespace"] is False
    hard = fake.get("ResourceQuota", NS, "sciplat-quota")["spec"]["hard"]  # type: ignore[index]
    assert hard["pods"] == "2", "the quota was brought up to date"


@pytest.mark.parametrize("steps", [[], ["namespace"], ["namespace", "quota", "network-policy"]])
async def test_stop_works_from_any_checkpoint(fake: FakeKubernetes, steps: list[str]) -> None:
    backend = make_backend(fake, full_config(poll_seconds=0.001, volumes=[]))
    await backend.start(lab_spec(), Lines())
    partial = {"namespace": NS, "pod": "lab", "image": IMAGE, "steps": steps}
    state = LabState("kubernetes", "alice", 0, 0, "", 0, "", extra={"kubernetes": partial})
    await backend.stop(state)
    assert fake.names("Namespace") == ["sciplat"]
    await backend.stop(state)
    await backend.api.close()


async def test_a_cancelled_start_removes_what_it_made(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    """JupyterHub cancels a start that takes too long (or the user asks to stop)."""

    def cancel_at_pulling(percent: int, line: str) -> None:
        if line.startswith("Pulling"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await backend.start(lab_spec(), cancel_at_pulling)
    assert fake.names("Namespace") == ["sciplat"]


async def test_a_lab_that_exits_while_starting_shows_its_log(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    def crash_at_pulling(percent: int, line: str) -> None:
        if line.startswith("Pulling"):
            log = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'x'"
            fake.terminate_pod(NS, "lab", 1, "Error", log=log)

    with pytest.raises(
        LabError, match=r"stopped while starting \(exit status 1, Error\)"
    ) as caught:
        await backend.start(lab_spec(), crash_at_pulling)
    assert caught.value.log_tail.endswith("ModuleNotFoundError: No module named 'x'")
    assert fake.names("Namespace") == ["sciplat"]


async def test_every_lab_in_the_cluster_can_be_found_and_stopped(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    """What a hub that lost its states (or died mid-start) needs to clean up."""
    started = [
        await backend.start(lab_spec(), Lines()),
        await backend.start(lab_spec("bob_smith", "gpu"), Lines()),
    ]
    fake.add({"kind": "Pod", "metadata": {"name": "other", "namespace": NS}, "spec": {}})
    found = sorted(await backend.labs(), key=lambda state: state.slug)
    assert [s.slug for s in found] == ["alice", "bob_smith--gpu"]
    for state, original in zip(found, sorted(started, key=lambda s: s.slug), strict=True):
        assert (state.ip, state.port, state.size) == (original.ip, original.port, "medium")
        assert await backend.poll(state) is None
        await backend.stop(state)
    assert await backend.labs() == []
    assert fake.names("Pod", NS) == ["other"]


async def test_a_root_lab_is_refused_before_anything_is_made(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    with pytest.raises(LabError, match="must not be 0"):
        await backend.start(lab_spec(uid=0), Lines())
    assert fake.calls == []


async def test_spawn_copies_the_pull_secret_writes_passwd_and_mounts_group_directories(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    lines = Lines()
    await backend.start(lab_spec(), lines)
    source = fake.get("Secret", "sciplat", "registry-credentials")
    copy = fake.get("Secret", NS, "registry-credentials")
    assert source is not None and copy is not None
    assert (copy["type"], copy["data"]) == (source["type"], source["data"])
    assert copy["metadata"]["labels"]["sciplat.io/user"] == "alice"
    pod = fake.get("Pod", NS, "lab")
    assert pod is not None
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-credentials"}]
    nss = fake.get("ConfigMap", NS, "sciplat-nss")
    assert nss is not None
    assert "alice:x:200001:200001::/home/alice:/bin/bash" in nss["data"]["passwd"].splitlines()
    assert "astro:x:300001:alice" in nss["data"]["group"].splitlines()
    mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert {"/etc/passwd", "/etc/group", "/home/alice/groups/astro"} <= mounts
    assert "/home/alice/groups/survey" in mounts
    assert "/home/alice/groups/archive" not in mounts, "its group_storage is 0"
    assert "limit of 1024 processes is not applied on Kubernetes" in lines.text()
    assert "podPidsLimit" in lines.text()


async def test_a_respawn_updates_the_copies_in_place(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    """Stop and start again: the pull secret (rotated meanwhile) and the passwd/group map
    (the user joined a group) are replaced, not duplicated, and the lab starts."""
    state = await backend.start(lab_spec(), Lines())
    await backend.stop(state)
    fake.objects.pop(("secrets", "sciplat", "registry-credentials"))
    with_pull_secret(fake, data="cm90YXRlZA==")
    backend.groups_of = lambda user: [*GROUPS, LabGroup("lsst", 300004)]
    before = len(fake.calls)
    await backend.start(lab_spec(groups=(300001, 300002, 300003, 300004)), Lines())
    writes = {str(c) for c in fake.calls[before:] if c.method in ("POST", "PUT")}
    assert {"PUT secrets sp-alice/registry-credentials", "PUT configmaps sp-alice/sciplat-nss"} <= (
        writes
    )
    copy = fake.get("Secret", NS, "registry-credentials")
    assert copy is not None and copy["data"] == {".dockerconfigjson": "cm90YXRlZA=="}
    nss = fake.get("ConfigMap", NS, "sciplat-nss")
    assert nss is not None and "lsst:x:300004:alice" in nss["data"]["group"]
    assert fake.names("Secret", NS) == ["registry-credentials"]


async def test_a_missing_pull_secret_is_explained_and_nothing_left(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    fake.objects.pop(("secrets", "sciplat", "registry-credentials"))
    with pytest.raises(LabError, match="missing from namespace sciplat") as caught:
        await backend.start(lab_spec(), Lines())
    assert "Tell an administrator" in caught.value.message
    assert fake.names("Namespace") == ["sciplat"]


async def test_a_pull_secret_of_the_wrong_type_is_not_copied(
    fake: FakeKubernetes, backend: KubernetesBackend
) -> None:
    secret = fake.get("Secret", "sciplat", "registry-credentials")
    assert secret is not None
    secret["type"] = "Opaque"
    with pytest.raises(LabError, match="docker-registry"):
        await backend.start(lab_spec(), Lines())
    assert fake.names("Namespace") == ["sciplat"]


@pytest.mark.parametrize(
    ("method", "plural"), [("GET", "secrets"), ("POST", "secrets"), ("POST", "configmaps")]
)
async def test_a_refused_secret_or_config_map_fails_the_start_cleanly(
    fake: FakeKubernetes, backend: KubernetesBackend, method: str, plural: str
) -> None:
    fake.fail(403, method=method, plural=plural, reason="Forbidden",
              message=f'{plural} is forbidden: User "system:serviceaccount:sciplat:t"')  # fmt: skip
    with pytest.raises(LabError, match="Tell an administrator") as caught:
        await backend.start(lab_spec(), Lines())
    assert "403" in caught.value.message
    assert fake.names("Namespace") == ["sciplat"]
    state = await backend.start(lab_spec(), Lines())  # the next start works
    assert state.extra["kubernetes"]["steps"][-1] == "running"


async def test_without_group_names_gids_still_resolve_and_no_directory_is_mounted(
    fake: FakeKubernetes,
) -> None:
    backend = KubernetesBackend(
        full_config(poll_seconds=0.001, image={"registry": "r.example.org"}),
        KubernetesApi.for_host(fake.url),
        lambda user: NamespaceQuota(),
    )
    state = await backend.start(lab_spec(), Lines())
    nss = fake.get("ConfigMap", NS, "sciplat-nss")
    assert nss is not None and "g300001:x:300001:alice" in nss["data"]["group"]
    pod = fake.get("Pod", NS, "lab")
    assert pod is not None and "imagePullSecrets" not in pod["spec"]
    assert "groups" not in {v["name"] for v in pod["spec"]["volumes"]}
    assert fake.names("Secret", NS) == []
    await backend.stop(state)
    await backend.api.close()
