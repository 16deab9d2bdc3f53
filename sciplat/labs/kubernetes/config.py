"""The ``kubernetes`` section of ``sciplat.yaml``: how labs run when ``hub.lab_backend`` is
``kubernetes``. Helm values map one to one onto these keys (see docs/architecture.md)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from sciplat.configbase import Bytes, OptionalBytes
from sciplat.configbase import Section as _Section
from sciplat.naming import DNS_LABEL_PATTERN

Kind = Literal["release", "weekly", "daily", "experimental"]
_DEFAULT_KEEP: dict[Kind, int] = {"weekly": 78, "daily": 30, "experimental": 50}
#: volume names the pod builder uses itself
RESERVED_VOLUMES = frozenset({"tmp", "nss", "groups"})
#: Label keys and values as Kubernetes accepts them (prefix/name, at most 63 per part).
Labels = dict[str, str]


class PeerSelector(_Section):
    """Pods picked by their namespace's labels and their own labels (both must match)."""

    namespace_labels: Labels = Field(
        default_factory=dict,
        description="Labels of the namespace the pods run in; empty: any namespace.",
        examples=[{"kubernetes.io/metadata.name": "sciplat"}],
    )
    pod_labels: Labels = Field(
        default_factory=dict,
        description="Labels of the pods; empty: every pod of those namespaces.",
        examples=[{"app.kubernetes.io/component": "hub"}],
    )


class EgressRule(PeerSelector):
    """A service labs may reach (everything not listed is denied, DNS excepted)."""

    name: str = Field(
        pattern=DNS_LABEL_PATTERN, description="What the rule is for.", examples=["tap"]
    )
    cidr: str = Field(
        "",
        description="An address block instead of selectors (e.g. an external database).",
        examples=["10.20.0.0/16"],
    )
    ports: list[int] = Field(
        default_factory=list,
        description="TCP ports allowed; empty: all ports.",
        examples=[[8080]],
    )

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        if value:
            try:
                ipaddress.ip_network(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not an address block like 10.0.0.0/8") from exc
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [p for p in value if not 1 <= p <= 65535]
        if bad:
            raise ValueError(f"ports must be 1-65535, not {bad}")
        return value


class KubeVolume(_Section):
    """Storage mounted into every lab: a claim per user (pvc), an NFS export, or a host
    directory (host_path, for test clusters only). ``{user}`` and ``{home}`` are substituted
    in ``mount_path`` and ``path``."""

    name: str = Field(pattern=DNS_LABEL_PATTERN, description="Volume name.", examples=["home"])
    kind: Literal["pvc", "nfs", "host_path"] = Field(description="Where the data lives.")
    mount_path: str = Field(
        description="Where it appears in the lab.", examples=["{home}", "/data/public"]
    )
    read_only: bool = Field(False, description="Whether labs may only read it.")
    size: OptionalBytes = Field(
        None, description="Size of each user's claim (pvc only).", examples=["10GiB"]
    )
    storage_class: str = Field(
        "", description="Storage class of the claim (pvc); empty: kubernetes.storage_class."
    )
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"] = Field(
        "ReadWriteOnce", description="Access mode of the claim (pvc)."
    )
    server: str = Field("", description="NFS server (nfs).", examples=["nfs.example.org"])
    path: str = Field(
        "",
        description="Exported path (nfs) or host directory (host_path).",
        examples=["/export/home/{user}"],
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> KubeVolume:
        if not self.mount_path.startswith(("/", "{home}")):
            raise ValueError(f"mount_path {self.mount_path!r} must be absolute or start {{home}}")
        if self.kind == "pvc" and self.size is None:
            raise ValueError(f"volume {self.name!r} is a pvc: give its size (e.g. 10GiB)")
        if self.kind == "nfs" and not (self.server and self.path.startswith("/")):
            raise ValueError(f"volume {self.name!r} is nfs: give server and an absolute path")
        if self.kind == "host_path" and not self.path.startswith("/"):
            raise ValueError(f"volume {self.name!r} is host_path: give an absolute path")
        return self


class GroupDirectories(_Section):
    """Where the user's groups' shared directories live, so a lab shows each of them at
    ``{home}/groups/<group>`` as the local backend does: one volume (an NFS export or, on test
    clusters, a host directory) holding a directory per group, mounted once per group with
    ``sub_path``. A group whose ``group_storage`` quota is 0 gets no directory. The platform
    does not create these directories: each must exist, owned by the group's GID, mode 2770."""

    kind: Literal["nfs", "host_path"] = Field(
        description="NFS export, or host directory (test clusters only)."
    )
    server: str = Field("", description="NFS server (nfs).", examples=["nfs.example.org"])
    path: str = Field(
        description="The exported path (nfs) or host directory holding one directory per group.",
        examples=["/export/groups"],
    )
    sub_path: str = Field(
        "{group}",
        description="Each group's directory below path; {group} is the group's name.",
        examples=["{group}", "projects/{group}"],
    )
    mount_path: str = Field(
        "{home}/groups/{group}",
        description="Where each group's directory appears in the lab ({home}, {group}).",
        examples=["{home}/groups/{group}"],
    )
    read_only: bool = Field(False, description="Whether members may only read them.")

    @model_validator(mode="after")
    def _paths(self) -> GroupDirectories:
        if "{group}" not in self.mount_path or not self.mount_path.startswith(("/", "{home}")):
            raise ValueError(
                f"mount_path {self.mount_path!r} must be absolute (or start {{home}}) and "
                "hold {group}"
            )
        parts = self.sub_path.split("/")
        if "{group}" not in self.sub_path or self.sub_path.startswith("/") or ".." in parts:
            raise ValueError(
                f"sub_path {self.sub_path!r} must be relative, without '..', and hold {{group}}"
            )
        if not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must be absolute")
        if self.kind == "nfs" and not self.server:
            raise ValueError("group_directories is nfs: give the server")
        return self


class NssFiles(_Section):
    """The lab's ``/etc/passwd`` and ``/etc/group``: the image's own entries plus the user's
    (name, UID, GID, home) and their groups with the platform's GIDs, from a ConfigMap in
    the user's namespace, so ``whoami``, ``id``, ``ls -l`` and ``pip install --user`` work
    for a UID the image does not know."""

    base_passwd: str = Field(
        "",
        description=(
            "The image's /etc/passwd lines; empty: those of the sciplat lab image (Debian 12's "
            "base accounts and lab)."
        ),
        examples=[
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"
        ],
    )
    base_group: str = Field(
        "",
        description="The image's /etc/group lines; empty: those of the sciplat lab image.",
        examples=["root:x:0:\nnogroup:x:65534:\n"],
    )

    @field_validator("base_passwd", "base_group")
    @classmethod
    def _lines(cls, value: str, info: ValidationInfo) -> str:
        what, fields = ("passwd", 7) if info.field_name == "base_passwd" else ("group", 4)
        for number, line in enumerate(value.splitlines(), 1):
            parts = line.split(":")
            if line and (len(parts) != fields or not parts[2].isdigit()):
                raise ValueError(
                    f"line {number} ({line!r}) is not a {what} entry: it needs "
                    f"{fields} fields separated by ':' with a numeric id third"
                )
        return value


class LabImage(_Section):
    """The lab image: one repository, one tag per environment (the environment's name)."""

    registry: str = Field(
        "ghcr.io", description="Registry host (and port).", examples=["registry.example.org"]
    )
    repository: str = Field(
        "sciplat/lab", description="Repository in the registry.", examples=["sciplat/lab"]
    )
    registry_url: str = Field(
        "",
        description="Base URL of the registry's v2 API for listing tags; default https://REGISTRY.",
        examples=["https://registry.example.org"],
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="When nodes pull the image again."
    )
    pull_secrets: list[str] = Field(
        default_factory=list,
        description=(
            "Secrets with registry credentials (type kubernetes.io/dockerconfigjson) in "
            "kubernetes.platform_namespace; each lab start copies them into the user's namespace "
            "(and the prepuller's, if that differs) and the pods name them in imagePullSecrets."
        ),
        examples=[["registry-credentials"]],
    )
    prefix: Path = Field(
        Path("/opt/lab"),
        description="Prefix of the Python environment inside the image.",
        examples=["/opt/lab"],
    )
    recommended: str = Field(
        "", description="The tag offered first on the spawn page.", examples=["r28_0_0"]
    )
    refresh_seconds: int = Field(
        300,
        ge=10,
        description="How often the hub reads the registry's tags again (when a spawn page opens).",
        examples=[300],
    )

    keep: dict[Kind, int] = Field(
        default_factory=_DEFAULT_KEEP.copy,
        description="How many of the newest tags of each kind the menu lists; unlisted: all.",
        examples=[{"weekly": 78, "daily": 30, "experimental": 50}],
    )

    def reference(self, tag: str) -> str:
        """The image reference of environment ``tag``."""
        return f"{self.registry}/{self.repository}:{tag}"


class PrepullerConfig(_Section):
    """A DaemonSet that keeps the spawn menu's first images on every lab node."""

    enabled: bool = Field(True, description="Whether the prepuller runs.")
    namespace: str = Field(
        "sciplat",
        pattern=DNS_LABEL_PATTERN,
        description="Namespace of the DaemonSet (the platform's own).",
    )
    pause_image: str = Field(
        "registry.k8s.io/pause:3.10",
        description="Tiny image that keeps each prepuller pod alive after the pulls.",
    )


class KubernetesConfig(_Section):
    """Labs as pods: one namespace per user with a ResourceQuota from the user's effective
    quota, a default-deny NetworkPolicy, and the lab pod running as the user's UID/GIDs."""

    namespace_prefix: str = Field(
        "sciplat",
        max_length=20,
        pattern=DNS_LABEL_PATTERN,
        description="User namespaces are named PREFIX-USER.",
        examples=["sciplat"],
    )
    kubeconfig: str = Field(
        "",
        description="kubeconfig file of the cluster; empty: the in-cluster service account.",
        examples=["/etc/sciplat/kubeconfig"],
    )
    platform_namespace: str = Field(
        "sciplat",
        pattern=DNS_LABEL_PATTERN,
        description="The platform's own namespace (the hub's): where image.pull_secrets are read.",
        examples=["sciplat"],
    )
    image: LabImage = Field(default_factory=LabImage)
    node_selector: Labels = Field(
        default_factory=dict,
        description="Nodes labs (and the prepuller) run on.",
        examples=[{"sciplat.io/role": "lab"}],
    )
    storage_class: str = Field(
        "", description="Default storage class of claims; empty: the cluster's default."
    )
    volumes: list[KubeVolume] = Field(
        default_factory=lambda: [
            KubeVolume(name="home", kind="pvc", mount_path="{home}", size=10 * 1024**3)
        ],
        description="What is mounted into every lab; one of them should be the home.",
    )
    group_directories: GroupDirectories | None = Field(
        None,
        description="The groups' shared directories (at ~/groups/<group>); none: not offered.",
    )
    nss: NssFiles = Field(default_factory=NssFiles)
    hub: PeerSelector = Field(
        default_factory=lambda: PeerSelector(
            namespace_labels={"kubernetes.io/metadata.name": "sciplat"},
            pod_labels={"app.kubernetes.io/component": "hub"},
        ),
        description="The hub's pods: the only ones (with the proxy) that may reach labs.",
    )
    proxy: PeerSelector = Field(
        default_factory=lambda: PeerSelector(
            namespace_labels={"kubernetes.io/metadata.name": "sciplat"},
            pod_labels={"app.kubernetes.io/component": "proxy"},
        ),
        description="The proxy's pods.",
    )
    egress: list[EgressRule] = Field(
        default_factory=list,
        description="Services labs may reach besides the hub and DNS (TAP, jobs, a database).",
        examples=[[{"name": "tap", "pod_labels": {"app.kubernetes.io/component": "tap"}}]],
    )
    tmp_size: Bytes = Field(
        1024**3, ge=16 * 1024**2, description="Size of the lab's /tmp.", examples=["1GiB"]
    )
    start_timeout: int = Field(
        300, ge=5, description="Seconds a pod may take to run (image pulls included)."
    )
    poll_seconds: float = Field(
        0.5, gt=0, le=10, description="How often a starting pod is looked at.", examples=[0.5]
    )
    stop_grace_seconds: int = Field(
        10, ge=0, description="Seconds a lab gets to exit after being asked to stop."
    )
    prepuller: PrepullerConfig = Field(default_factory=PrepullerConfig)

    @field_validator("volumes")
    @classmethod
    def _unique_volumes(cls, volumes: list[KubeVolume]) -> list[KubeVolume]:
        names = [v.name for v in volumes]
        reserved = ", ".join(sorted(RESERVED_VOLUMES.intersection(names)))
        if reserved or len(set(names)) != len(names):
            raise ValueError(
                "volume names must be unique and not tmp, nss or groups (the lab's /tmp, "
                f"/etc/passwd and group directories); got {', '.join(names)}"
            )
        return volumes
