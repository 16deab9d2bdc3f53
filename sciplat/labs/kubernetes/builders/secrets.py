"""Copies of the image pull secrets: the platform's namespace holds them once, and each
user namespace (and the prepuller's) gets its own copy, since a pod can name only Secrets of
its own namespace in ``imagePullSecrets``."""

from __future__ import annotations

from sciplat.labs.kubernetes.builders.common import MANAGED_BY, user_labels
from sciplat.labs.kubernetes.models import KubeObject

#: the Secret types the kubelet reads registry credentials from
PULL_SECRET_TYPES = frozenset({"kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg"})


def build_pull_secret(source: KubeObject, namespace: str, user: str | None = None) -> KubeObject:
    """The copy of ``source`` (a Secret as the API returned it) for ``namespace``: the same
    name, type and data, the platform's labels (and the user's, in a user namespace), none of
    the source's other metadata.

    Raises:
        ValueError: ``source`` is not a registry-credentials Secret, or holds no data.
    """
    meta = source.get("metadata") or {}
    name, kind = str(meta.get("name", "")), str(source.get("type", ""))
    where = f"{meta.get('namespace', '')}/{name}"
    if kind not in PULL_SECRET_TYPES:
        raise ValueError(
            f"the image pull secret {where} is of type {kind or 'Opaque'!r}, not "
            "kubernetes.io/dockerconfigjson (make it with `kubectl create secret "
            "docker-registry`)"
        )
    if not source.get("data"):
        raise ValueError(f"the image pull secret {where} holds no data")
    labels = {**MANAGED_BY, **(user_labels(user) if user is not None else {})}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "type": kind,
        "data": dict(source["data"]),
    }
