"""The prepuller: a DaemonSet whose init containers pull each menu image on every lab node."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from sciplat.labs.kubernetes.builders.common import CONTAINER_SECURITY, MANAGED_BY, placement
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import KubeObject
from sciplat.naming import dns_label

PREPULLER_NAME = "sciplat-prepuller"
_SELECTOR = {**MANAGED_BY, "app.kubernetes.io/name": PREPULLER_NAME}
#: nobody; the pulls need no identity and the containers do nothing
_NOBODY = 65534
_SMALL = {"cpu": "10m", "memory": "16Mi"}


def build_prepuller(config: KubernetesConfig, images: Sequence[str]) -> KubeObject:
    """A DaemonSet on the lab nodes: one init container per image (each only exits, so the
    kubelet must have pulled the image), then a pause container holds the pod, so the images
    stay in use and the kubelet's image garbage collection keeps them."""
    inits = [
        {
            "name": f"pull-{dns_label(image.rsplit(':', 1)[-1], 50)}",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": [str(config.image.prefix / "bin" / "python"), "-c", "pass"],
            "resources": {"requests": dict(_SMALL), "limits": dict(_SMALL)},
            "securityContext": copy.deepcopy(CONTAINER_SECURITY),
        }
        for image in sorted(set(images))
    ]
    pod_spec: dict[str, object] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsUser": _NOBODY,
            "runAsGroup": _NOBODY,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": inits,
        "containers": [
            {
                "name": "pause",
                "image": config.prepuller.pause_image,
                "resources": {"requests": dict(_SMALL), "limits": dict(_SMALL)},
                "securityContext": copy.deepcopy(CONTAINER_SECURITY),
            }
        ],
        **placement(config),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": PREPULLER_NAME,
            "namespace": config.prepuller.namespace,
            "labels": dict(_SELECTOR),
        },
        "spec": {
            "selector": {"matchLabels": dict(_SELECTOR)},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "100%"},
            },
            "template": {"metadata": {"labels": dict(_SELECTOR)}, "spec": pod_spec},
        },
    }
