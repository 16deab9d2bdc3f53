"""Names, labels and quantities every builder uses."""

from __future__ import annotations

from typing import Any

from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.naming import dns_label

MANAGED_BY = {"app.kubernetes.io/managed-by": "sciplat"}
LAB_LABELS = {**MANAGED_BY, "app.kubernetes.io/name": "sciplat-lab"}
#: annotation keys holding the raw (unmangled) names
USER_KEY = "sciplat.io/user"
SERVER_KEY = "sciplat.io/server"
ENVIRONMENT_KEY = "sciplat.io/environment"
SIZE_KEY = "sciplat.io/size"
IMAGE_KEY = "sciplat.io/image"

#: every container the platform runs: non-root, no escalation, no capabilities, read-only root
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}

_BINARY = (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024))


def pod_name(server: str) -> str:
    """The lab pod of ``server`` (``lab`` for the default server) in the user's namespace."""
    return f"lab-{dns_label(server, 59)}" if server else "lab"


def user_labels(user: str, server: str | None = None) -> dict[str, str]:
    """Selector labels of a user's objects (label values are DNS-safe forms of the names)."""
    labels = {USER_KEY: dns_label(user)}
    if server is not None:
        labels[SERVER_KEY] = dns_label(server) if server else "default"
    return labels


def cpu_quantity(cores: float) -> str:
    """``1.5`` → ``1500m``; whole cores stay whole (``2``)."""
    milli = round(cores * 1000)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(size: int) -> str:
    """Bytes as the largest exact binary unit: ``4294967296`` → ``4Gi``."""
    for suffix, unit in _BINARY:
        if size >= unit and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def placement(config: KubernetesConfig) -> dict[str, Any]:
    """Pod spec fields shared by labs and the prepuller: lab nodes, image pull secrets."""
    fields: dict[str, Any] = {}
    if config.node_selector:
        fields["nodeSelector"] = dict(config.node_selector)
    if config.image.pull_secrets:
        fields["imagePullSecrets"] = [{"name": s} for s in config.image.pull_secrets]
    return fields
