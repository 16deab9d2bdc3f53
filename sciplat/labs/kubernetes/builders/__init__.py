"""Pure builders: plain data (config section, lab spec, quota) in, Kubernetes objects out."""

from __future__ import annotations

from collections.abc import Sequence

from sciplat.labs.kubernetes.builders.common import pod_name
from sciplat.labs.kubernetes.builders.namespace import (
    build_namespace,
    build_network_policy,
    build_resource_quota,
)
from sciplat.labs.kubernetes.builders.nss import build_nss
from sciplat.labs.kubernetes.builders.pod import build_claims, build_pod
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import LabGroup, LabObjects, NamespaceQuota
from sciplat.labs.models import LabSpec
from sciplat.naming import lab_namespace


def lab_objects(
    config: KubernetesConfig,
    spec: LabSpec,
    quota: NamespaceQuota,
    groups: Sequence[LabGroup] = (),
) -> LabObjects:
    """Every object of one lab: namespace, quota, network policy, passwd/group ConfigMap,
    claims, pod. The image is the configured repository with the environment's name as its
    tag; ``groups`` are the user's groups by name (their GIDs also in ``spec.groups``).

    Raises:
        ValueError: a UID or GID of 0, or a user or group name no passwd file can hold.
    """
    namespace = lab_namespace(config.namespace_prefix, spec.user)
    return LabObjects(
        namespace=build_namespace(
            namespace, spec.user, any(v.kind == "host_path" for v in config.volumes)
        ),
        quota=build_resource_quota(namespace, spec.user, quota),
        network_policy=build_network_policy(config, namespace, spec.user),
        nss=build_nss(config.nss, spec, groups, namespace),
        claims=tuple(build_claims(config, spec, namespace)),
        pod=build_pod(config, spec, namespace, config.image.reference(spec.environment), groups),
    )


__all__ = ["lab_objects", "pod_name"]
