"""Pure builders: plain data (config section, lab spec, quota) in, Kubernetes objects out."""

from __future__ import annotations

from sciplat.labs.kubernetes.builders.common import pod_name
from sciplat.labs.kubernetes.builders.namespace import (
    build_namespace,
    build_network_policy,
    build_resource_quota,
)
from sciplat.labs.kubernetes.builders.pod import build_claims, build_pod
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import LabObjects, NamespaceQuota
from sciplat.labs.models import LabSpec
from sciplat.naming import lab_namespace


def lab_objects(config: KubernetesConfig, spec: LabSpec, quota: NamespaceQuota) -> LabObjects:
    """Every object of one lab: namespace, quota, network policy, claims, pod. The image is
    the configured repository with the environment's name as its tag."""
    namespace = lab_namespace(config.namespace_prefix, spec.user)
    return LabObjects(
        namespace=build_namespace(
            namespace, spec.user, any(v.kind == "host_path" for v in config.volumes)
        ),
        quota=build_resource_quota(namespace, spec.user, quota),
        network_policy=build_network_policy(config, namespace, spec.user),
        claims=tuple(build_claims(config, spec, namespace)),
        pod=build_pod(config, spec, namespace, config.image.reference(spec.environment)),
    )


__all__ = ["lab_objects", "pod_name"]
