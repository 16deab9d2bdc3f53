"""Builds the Kubernetes backend's long-lived objects from the config (called by
sciplat.factory when ``hub.lab_backend`` is ``kubernetes``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sciplat.labs.kubernetes.backend import KubernetesBackend
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.images import ImageCatalog
from sciplat.labs.kubernetes.models import NamespaceQuota
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


def build_kubernetes(
    config: KubernetesConfig, limits_of: Callable[[str], Limits]
) -> KubernetesServices:
    """The API client, the lab backend and the image catalog; ``limits_of(user)`` gives the
    user's effective limits (the same resolver as for local labs)."""
    api = KubernetesApi(kubeconfig=config.kubeconfig)
    claims = sum(v.kind == "pvc" for v in config.volumes)

    def quota_for(user: str) -> NamespaceQuota:
        return namespace_quota(limits_of(user), claims)

    return KubernetesServices(
        api=api,
        backend=KubernetesBackend(config, api, quota_for),
        images=ImageCatalog.from_config(config, api),
    )
