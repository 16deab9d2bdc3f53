"""The builders' objects: equal to the expected JSON files, valid against the schemas of three
Kubernetes minors (strict: no unknown fields), and true to the platform's policy for any user."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sciplat.labs.kubernetes.builders import lab_objects
from sciplat.labs.kubernetes.builders.common import cpu_quantity, memory_quantity
from sciplat.labs.kubernetes.builders.nss import passwd_and_group
from sciplat.labs.kubernetes.builders.prepuller import build_prepuller
from sciplat.labs.kubernetes.builders.secrets import build_pull_secret
from sciplat.labs.kubernetes.config import KubernetesConfig, NssFiles
from sciplat.labs.kubernetes.models import LabGroup, NamespaceQuota
from tests.labs.kubernetes.conftest import GROUPS, full_config, lab_spec

DATA = Path(__file__).parents[2] / "data" / "kubernetes"
#: the newest minors whose schemas the installed kubernetes-validate ships
VERSIONS = ("1.35", "1.36", "1.37")
ENFORCE = "pod-security.kubernetes.io/enforce"
QUOTA = NamespaceQuota(cores=4, memory=16 * 1024**3, pods=2, pvcs=1)
#: a registry-credentials Secret as the API returns it from the platform's namespace
SOURCE_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "registry-credentials", "namespace": "sciplat", "uid": "1234",
                 "resourceVersion": "42", "annotations": {"owner": "ops"}},
    "type": "kubernetes.io/dockerconfigjson",
    "data": {".dockerconfigjson": "eyJhdXRocyI6e319"},
}  # fmt: skip
HOST_GROUPS = {"kind": "host_path", "path": "/srv/groups", "sub_path": "g/{group}",
               "mount_path": "/groups/{group}", "read_only": True}  # fmt: skip


def _entries(text: str) -> dict[str, list[str]]:
    """passwd or group lines by name (the name must occur once)."""
    lines = [line.split(":") for line in text.splitlines()]
    names = [parts[0] for parts in lines]
    assert len(set(names)) == len(names), f"a name occurs twice: {names}"
    return {parts[0]: parts[1:] for parts in lines}


def _expect(name: str, objects: Any) -> None:
    """Compare with tests/data/kubernetes/NAME; SCIPLAT_UPDATE_EXPECTED=1 rewrites the file
    (then read the diff before committing it)."""
    path = DATA / name
    text = json.dumps(objects, indent=2, sort_keys=True) + "\n"
    if os.environ.get("SCIPLAT_UPDATE_EXPECTED"):
        path.write_text(text)
    assert json.loads(path.read_text()) == objects


def test_lab_objects_match_the_expected_json() -> None:
    objects = lab_objects(full_config(), lab_spec(), QUOTA, GROUPS)
    _expect("lab-alice.json", objects.all())


def test_defaults_and_a_named_server_match_the_expected_json() -> None:
    spec = lab_spec(user="bob_smith", server="gpu.test")
    objects = lab_objects(KubernetesConfig(), spec, NamespaceQuota(cores=2.5))
    _expect("lab-bob-defaults.json", objects.all())


def test_pull_secret_copy_matches_the_expected_json() -> None:
    _expect("pull-secret.json", build_pull_secret(SOURCE_SECRET, "sp-alice", "alice"))


def test_prepuller_matches_the_expected_json() -> None:
    config = full_config()
    images = [config.image.reference(t) for t in ("w_2026_47", "r28_0_0", "w_2026_47")]
    _expect("prepuller.json", build_prepuller(config, images))


@pytest.mark.parametrize("version", VERSIONS)
def test_objects_are_valid_kubernetes(version: str) -> None:
    config = full_config()
    for objects in (
        lab_objects(config, lab_spec(), QUOTA, GROUPS),
        lab_objects(KubernetesConfig(), lab_spec("bob_smith", "gpu.test"), NamespaceQuota()),
        lab_objects(full_config(group_directories=HOST_GROUPS), lab_spec(), QUOTA, GROUPS),
    ):
        for obj in objects.all():
            kubernetes_validate.validate(obj, version, strict=True)
    kubernetes_validate.validate(build_prepuller(config, ["r/l:a"]), version, strict=True)
    copy = build_pull_secret(SOURCE_SECRET, "sp-alice", "alice")
    kubernetes_validate.validate(copy, version, strict=True)


def test_the_validator_catches_a_wrong_object() -> None:
    pod = lab_objects(full_config(), lab_spec(), QUOTA).pod
    pod["spec"]["containers"][0]["securityContext"]["dropCapabilities"] = ["ALL"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, VERSIONS[-1], strict=True)


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


usernames = st.one_of(
    st.sampled_from(["astro", "root", "lab", "users", "nobody"]),  # names the files hold already
    st.from_regex(r"\A[a-z][a-z0-9_-]{0,31}\Z"),
)
servers = st.one_of(st.just(""), st.from_regex(r"\A[A-Za-z0-9._-]{1,40}\Z"))


@settings(max_examples=60, deadline=None)
@given(user=usernames, server=servers, uid=st.integers(1000, 2**31 - 1))
def test_policy_holds_for_every_user(user: str, server: str, uid: int) -> None:
    spec = lab_spec(user, server, uid=uid, gid=uid)
    objects = lab_objects(full_config(), spec, QUOTA, GROUPS)
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
        etc = {m["mountPath"]: m for m in container["volumeMounts"] if m["name"] == "nss"}
        assert etc == {f"/etc/{k}": {"name": "nss", "mountPath": f"/etc/{k}", "subPath": k,
                                     "readOnly": True} for k in ("passwd", "group")}  # fmt: skip
        assert writable & {f"/home/{user}/groups/astro", f"/home/{user}/groups/survey"}
        assert f"/home/{user}/groups/archive" not in writable, "group_storage 0: no directory"
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
    assert security["supplementalGroups"] == [300001, 300002, 300003]
    assert objects.nss["metadata"]["namespace"] == namespace
    entries = _entries(objects.nss["data"]["passwd"])
    assert entries[user] == ["x", str(uid), str(uid), "", f"/home/{user}", "/bin/bash"]
    assert [name for name, e in entries.items() if e[1] == str(uid)] == [user]
    groups = _entries(objects.nss["data"]["group"])
    private = f"g{uid}" if user in {g.name for g in GROUPS} else user
    assert groups[private] == ["x", str(uid), ""]
    for group in GROUPS:
        assert groups[group.name] == ["x", str(group.gid), user]


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


def test_passwd_and_group_carry_the_user_and_every_group() -> None:
    passwd, group = passwd_and_group(NssFiles(), lab_spec(), GROUPS)
    users, groups = _entries(passwd), _entries(group)
    assert users["alice"] == ["x", "200001", "200001", "", "/home/alice", "/bin/bash"]
    assert users["root"][1] == "0" and users["nobody"][1] == "65534", "the image's own stay"
    assert groups["alice"] == ["x", "200001", ""]
    assert groups["astro"] == ["x", "300001", "alice"]
    assert groups["survey"] == ["x", "300002", "alice"]
    assert groups["archive"] == ["x", "300003", "alice"], "no directory, still a group"
    assert passwd.endswith("\n") and group.endswith("\n")


def test_platform_entries_take_precedence_over_the_images() -> None:
    """A platform group called ``users`` or a user called ``lab`` must resolve to the
    platform's ids: the image's entry of that name (or id) is left out."""
    spec = lab_spec("lab", uid=200001, gid=200001)
    passwd, group = passwd_and_group(NssFiles(), spec, [LabGroup("users", 300001)])
    assert _entries(passwd)["lab"][1] == "200001"
    assert _entries(group)["users"] == ["x", "300001", "lab"]
    base = NssFiles(base_passwd="root:x:0:0::/root:/bin/sh\nold:x:200001:1::/:/bin/sh\n",
                    base_group="root:x:0:\nold:x:300001:\n")  # fmt: skip
    passwd, group = passwd_and_group(base, lab_spec(), GROUPS)
    assert "old" not in _entries(passwd) and "old" not in _entries(group)
    assert list(_entries(passwd)) == ["root", "alice"]


def test_a_group_named_like_the_user_keeps_every_name_unique() -> None:
    passwd, group = passwd_and_group(NssFiles(), lab_spec(), [LabGroup("alice", 300001)])
    groups = _entries(group)  # asserts each name occurs once
    assert groups["alice"] == ["x", "300001", "alice"]
    assert groups["g200001"] == ["x", "200001", ""], "the private group, by its GID"
    assert _entries(passwd)["alice"][2] == "200001"


@pytest.mark.parametrize("name", ["a:b", "a\nroot:x:0:0::/:/bin/sh", "a,b", ""])
def test_a_name_no_passwd_file_can_hold_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        passwd_and_group(NssFiles(), lab_spec(), [LabGroup(name, 300009)])


def test_a_base_file_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a passwd entry"):
        NssFiles(base_passwd="root:x:0:0:/root:/bin/bash\n")
    with pytest.raises(ValueError, match="is not a group entry"):
        NssFiles(base_group="root:x:zero:\n")


def test_group_directories_are_mounted_per_group_with_a_sub_path() -> None:
    pod = lab_objects(full_config(group_directories=HOST_GROUPS), lab_spec(), QUOTA, GROUPS).pod
    mounts = [m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "groups"]
    assert mounts == [
        {"name": "groups", "mountPath": f"/groups/{g}", "subPath": f"g/{g}", "readOnly": True}
        for g in ("astro", "survey")
    ]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "groups"]
    assert volume == {"name": "groups", "hostPath": {"path": "/srv/groups", "type": "Directory"}}


def test_no_group_directory_without_the_setting_or_an_offered_group() -> None:
    for config, groups in (
        (full_config(group_directories=None), GROUPS),
        (full_config(), [LabGroup("archive", 300003, directory=False)]),
        (full_config(), []),
    ):
        pod = lab_objects(config, lab_spec(), QUOTA, groups).pod
        assert "groups" not in {v["name"] for v in pod["spec"]["volumes"]}
        assert pod["spec"]["securityContext"]["supplementalGroups"] == [300001, 300002, 300003]


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ({"kind": "nfs", "path": "/export/groups"}, "give the server"),
        ({"kind": "host_path", "path": "groups"}, "must be absolute"),
        ({"kind": "host_path", "path": "/g", "sub_path": "../{group}"}, "without '..'"),
        ({"kind": "host_path", "path": "/g", "sub_path": "shared"}, "hold {group}"),
        ({"kind": "host_path", "path": "/g", "mount_path": "/groups"}, "hold {group}"),
    ],
)
def test_wrong_group_directories_are_refused(setting: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        full_config(group_directories=setting)


@pytest.mark.parametrize("name", ["tmp", "nss", "groups"])
def test_the_pods_own_volume_names_are_refused(name: str) -> None:
    volume = {"name": name, "kind": "host_path", "mount_path": "/x", "path": "/x"}
    with pytest.raises(ValueError, match="not tmp, nss or groups"):
        full_config(volumes=[volume])


def test_a_group_name_that_is_a_path_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot name a directory"):
        lab_objects(full_config(), lab_spec(), QUOTA, [LabGroup("..", 300009)])


@pytest.mark.parametrize(
    ("change", "problem"),
    [({"type": "Opaque"}, "not kubernetes.io/dockerconfigjson"), ({"data": {}}, "holds no data")],
)
def test_a_secret_that_is_not_registry_credentials_is_not_copied(
    change: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        build_pull_secret({**SOURCE_SECRET, **change}, "sp-alice", "alice")


def test_pods_name_the_pull_secrets_of_their_namespace() -> None:
    config = full_config()
    copy = build_pull_secret(SOURCE_SECRET, "sp-alice", "alice")
    pod = lab_objects(config, lab_spec(), QUOTA, GROUPS).pod
    assert pod["spec"]["imagePullSecrets"] == [{"name": copy["metadata"]["name"]}]
    assert copy["metadata"]["namespace"] == pod["metadata"]["namespace"]
    prepuller = build_prepuller(config, ["r/l:a"])["spec"]["template"]["spec"]
    assert prepuller["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_glibc_reads_the_files_as_the_lab_would(tmp_path: Path) -> None:
    """The files bind-mounted over /etc/passwd and /etc/group in a private mount namespace
    (as the pod's subPath mounts do): ``id`` and ``getent`` answer for the platform's UID."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (a private mount namespace)")
    passwd, group = passwd_and_group(NssFiles(), lab_spec(), GROUPS[:2])
    (tmp_path / "passwd").write_text(passwd)
    (tmp_path / "group").write_text(group)
    script = (
        f"mount --bind {tmp_path}/passwd /etc/passwd && mount --bind {tmp_path}/group "
        "/etc/group && id alice && getent passwd 200001 && getent group 300003"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    first, second, third = done.stdout.splitlines()
    assert first == (
        "uid=200001(alice) gid=200001(alice) groups=200001(alice),300001(astro),300002(survey),"
        "300003(g300003)"
    )
    assert second == "alice:x:200001:200001::/home/alice:/bin/bash"
    assert third == "g300003:x:300003:alice"
