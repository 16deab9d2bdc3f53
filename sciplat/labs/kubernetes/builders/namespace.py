"""The user's namespace, its ResourceQuota and its default-deny NetworkPolicy."""

from __future__ import annotations

from typing import Any

from sciplat.labs.kubernetes.builders.common import (
    LAB_LABELS,
    MANAGED_BY,
    USER_KEY,
    cpu_quantity,
    memory_quantity,
    user_labels,
)
from sciplat.labs.kubernetes.config import EgressRule, KubernetesConfig, PeerSelector
from sciplat.labs.kubernetes.models import KubeObject, NamespaceQuota

QUOTA_NAME = "sciplat-quota"
POLICY_NAME = "sciplat-labs"


#: Pod Security admission: the cluster itself refuses a lab pod that breaks the restricted
#: profile (root, privilege escalation, capabilities, host paths)
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def build_namespace(name: str, user: str, host_paths: bool = False) -> KubeObject:
    """The namespace ``name`` holding ``user``'s labs, under the restricted Pod Security
    profile; with ``host_paths`` (test clusters' hostPath volumes, which that profile forbids)
    the profile only warns."""
    security = dict(RESTRICTED)
    if host_paths:
        del security["pod-security.kubernetes.io/enforce"]
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**MANAGED_BY, **user_labels(user), **security},
            "annotations": {USER_KEY: user},
        },
    }


def build_resource_quota(namespace: str, user: str, quota: NamespaceQuota) -> KubeObject:
    """The namespace's ResourceQuota: the user's cores and memory (requests and limits),
    pods and claims; a limit the user does not have (None) is left out, i.e. unlimited."""
    hard: dict[str, str] = {}
    if quota.cores is not None:
        hard["requests.cpu"] = hard["limits.cpu"] = cpu_quantity(quota.cores)
    if quota.memory is not None:
        hard["requests.memory"] = hard["limits.memory"] = memory_quantity(quota.memory)
    if quota.pods is not None:
        hard["pods"] = str(quota.pods)
    if quota.pvcs is not None:
        hard["persistentvolumeclaims"] = str(quota.pvcs)
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": QUOTA_NAME,
            "namespace": namespace,
            "labels": {**MANAGED_BY, **user_labels(user)},
        },
        "spec": {"hard": hard},
    }


def _peer(selector: PeerSelector) -> dict[str, Any]:
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": dict(selector.namespace_labels)}}
    if selector.pod_labels:
        peer["podSelector"] = {"matchLabels": dict(selector.pod_labels)}
    return peer


def _egress(rule: EgressRule) -> dict[str, Any]:
    peer = {"ipBlock": {"cidr": rule.cidr}} if rule.cidr else _peer(rule)
    out: dict[str, Any] = {"to": [peer]}
    if rule.ports:
        out["ports"] = [{"protocol": "TCP", "port": p} for p in rule.ports]
    return out


def build_network_policy(config: KubernetesConfig, namespace: str, user: str) -> KubeObject:
    """Default deny for every lab pod of the namespace, in and out. In: only the hub and the
    proxy. Out: the hub (its API), cluster DNS, and the services ``config.egress`` names."""
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": POLICY_NAME,
            "namespace": namespace,
            "labels": {**MANAGED_BY, **user_labels(user)},
        },
        "spec": {
            "podSelector": {"matchLabels": dict(LAB_LABELS)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [_peer(config.hub), _peer(config.proxy)]}],
            "egress": [{"to": [_peer(config.hub)]}, dns, *(_egress(r) for r in config.egress)],
        },
    }
