"""Builds the Kubernetes backend's long-lived objects from the config (called by
sciplat.factory when ``hub.lab_backend`` is ``kubernetes``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sciplat.identity.models import User
from sciplat.labs.kubernetes.backend import GroupsOf, KubernetesBackend
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.images import ImageCatalog
from sciplat.labs.kubernetes.models import LabGroup, NamespaceQuota
from sciplat.labs.kubernetes.storage.client import KubernetesApi

#: a user's effective limits by quota key (None: unlimited), e.g. from QuotaService
Limits = Mapping[str, float | int | None]


@dataclass
class KubernetesServices:
    api: KubernetesApi
    backend: KubernetesBackend
    images: ImageCatalog


def namespace_quota(limits: Limits, claims: int) -> NamespaceQuota:
    """The ResourceQuota of a user's namespace from the user's effective limits: ``cores``,
    ``memory``, ``labs`` (one pod per lab), and the claims every user has (``claims``)."""
    cores, memory, labs = limits.get("cores"), limits.get("memory"), limits.get("labs")
    return NamespaceQuota(
        cores=None if cores is None else float(cores),
        memory=None if memory is None else int(memory),
        pods=None if labs is None else int(labs),
        pvcs=claims,
    )


def lab_groups(user: User, group_limit_of: Callable[[str], int | None]) -> list[LabGroup]:
    """``user``'s groups as labs see them: name, GID, and a directory unless the group's
    ``group_storage`` (``group_limit_of(name)``, bytes or None) is 0, as on local labs."""
    return [LabGroup(g.name, g.gid, group_limit_of(g.name) != 0) for g in user.groups]


def build_kubernetes(
    config: KubernetesConfig,
    limits_of: Callable[[str], Limits],
    groups_of: GroupsOf | None = None,
) -> KubernetesServices:
    """The API client, the lab backend and the image catalog; ``limits_of(user)`` gives the
    user's effective limits (the same resolver as for local labs), ``groups_of(user)`` their
    groups (:func:`lab_groups`); without it /etc/group names groups by GID and no group
    directory is mounted."""
    api = KubernetesApi(kubeconfig=config.kubeconfig)
    claims = sum(v.kind == "pvc" for v in config.volumes)

    def quota_for(user: str) -> NamespaceQuota:
        return namespace_quota(limits_of(user), claims)

    return KubernetesServices(
        api=api,
        backend=KubernetesBackend(config, api, quota_for, groups_of=groups_of),
        images=ImageCatalog.from_config(config, api),
    )
