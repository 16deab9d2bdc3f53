"""Plain data the Kubernetes builders and backend share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A Kubernetes object as the API reads and writes it (JSON).
KubeObject = dict[str, Any]


@dataclass(frozen=True)
class NamespaceQuota:
    """What a user's namespace may hold, from the user's effective quota (None: unlimited)."""

    cores: float | None = None
    memory: int | None = None
    pods: int | None = None
    pvcs: int | None = None


@dataclass(frozen=True)
class LabGroup:
    """One of the user's groups: its name (as in /etc/group and ~/groups/<name>), its GID,
    and whether it has a shared directory (False when its ``group_storage`` quota is 0)."""

    name: str
    gid: int
    directory: bool = True


@dataclass(frozen=True)
class LabObjects:
    """Everything one lab needs that follows from the config and the user, in the order it
    is created (the copies of the image pull secrets come from the cluster, so they are made
    apart: :func:`sciplat.labs.kubernetes.builders.secrets.build_pull_secret`)."""

    namespace: KubeObject
    quota: KubeObject
    network_policy: KubeObject
    nss: KubeObject
    claims: tuple[KubeObject, ...]
    pod: KubeObject

    def all(self) -> list[KubeObject]:
        return [
            self.namespace, self.quota, self.network_policy, self.nss, *self.claims, self.pod
        ]  # fmt: skip


@dataclass
class Checkpoint:
    """How far a start got; stored in ``LabState.extra["kubernetes"]``."""

    namespace: str
    pod: str
    image: str
    #: steps done, in order: namespace, pull-secrets, quota, network-policy, nss, claims, pod,
    #: running
    steps: list[str] = field(default_factory=list)
    #: whether this start made the namespace (so a failed start removes it again)
    created_namespace: bool = False
    #: the last thing the cluster said about the pod (for error pages and log_tail)
    last_message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "pod": self.pod,
            "image": self.image,
            "steps": list(self.steps),
            "created_namespace": self.created_namespace,
            "last_message": self.last_message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """Raises: KeyError: not a checkpoint (a state from another backend)."""
        return cls(
            namespace=str(data["namespace"]),
            pod=str(data["pod"]),
            image=str(data.get("image", "")),
            steps=[str(s) for s in data.get("steps", [])],
            created_namespace=bool(data.get("created_namespace", False)),
            last_message=str(data.get("last_message", "")),
        )
