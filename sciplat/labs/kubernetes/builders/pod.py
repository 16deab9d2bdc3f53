"""The lab pod and the user's claims, from the lab spec and the ``kubernetes`` section."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sciplat.labs.kubernetes.builders.common import (
    CONTAINER_SECURITY,
    ENVIRONMENT_KEY,
    IMAGE_KEY,
    LAB_LABELS,
    MANAGED_BY,
    SERVER_KEY,
    SIZE_KEY,
    USER_KEY,
    cpu_quantity,
    memory_quantity,
    placement,
    pod_name,
    user_labels,
)
from sciplat.labs.kubernetes.config import KubernetesConfig, KubeVolume
from sciplat.labs.kubernetes.models import KubeObject
from sciplat.labs.models import LabSpec

#: the lab's port in the pod's own network namespace, named for Services and policies
PORT_NAME = "http"


def _fill(template: str, spec: LabSpec) -> str:
    # str.replace, not str.format: a path may hold other braces, which must stay as written
    return template.replace("{home}", str(spec.home)).replace("{user}", spec.user)


def build_claims(config: KubernetesConfig, spec: LabSpec, namespace: str) -> list[KubeObject]:
    """One PersistentVolumeClaim per ``pvc`` volume, named after the volume; it stays in the
    user's namespace between labs (it holds the user's files)."""
    claims = []
    for volume in config.volumes:
        if volume.kind != "pvc" or volume.size is None:
            continue
        claim_spec: dict[str, Any] = {
            "accessModes": [volume.access_mode],
            "resources": {"requests": {"storage": memory_quantity(volume.size)}},
        }
        storage_class = volume.storage_class or config.storage_class
        if storage_class:
            claim_spec["storageClassName"] = storage_class
        claims.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": volume.name,
                    "namespace": namespace,
                    "labels": {**MANAGED_BY, **user_labels(spec.user)},
                },
                "spec": claim_spec,
            }
        )
    return claims


def _volume(volume: KubeVolume, spec: LabSpec) -> dict[str, Any]:
    if volume.kind == "pvc":
        source: dict[str, Any] = {"persistentVolumeClaim": {"claimName": volume.name}}
    elif volume.kind == "nfs":
        source = {"nfs": {"server": volume.server, "path": _fill(volume.path, spec)}}
    else:
        source = {"hostPath": {"path": _fill(volume.path, spec), "type": "Directory"}}
    if volume.read_only and volume.kind != "host_path":
        next(iter(source.values()))["readOnly"] = True
    return {"name": volume.name, **source}


def _env(spec: LabSpec) -> list[dict[str, str]]:
    env = dict(spec.env)
    url = env.get("JUPYTERHUB_SERVICE_URL")
    if url:
        # the hub hands out a loopback URL; in a pod the server must listen on the pod's IP
        parts = urlsplit(url)
        env["JUPYTERHUB_SERVICE_URL"] = urlunsplit(parts._replace(netloc=f"0.0.0.0:{spec.port}"))
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def build_pod(config: KubernetesConfig, spec: LabSpec, namespace: str, image: str) -> KubeObject:
    """The lab pod: the user's UID/GIDs, non-root, no privilege escalation, no capabilities,
    read-only root filesystem with the configured volumes and a private /tmp writable.

    Raises:
        ValueError: the spec asks for UID or GID 0 (labs never run as root).
    """
    if spec.uid == 0 or spec.gid == 0 or 0 in spec.groups:
        raise ValueError(f"lab of {spec.user!r}: UID, GID and groups must not be 0 (root)")
    resources = {
        "cpu": cpu_quantity(spec.limits.cpu),
        "memory": memory_quantity(spec.limits.memory),
    }
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - the pod's own emptyDir
    mounts += [
        {"name": v.name, "mountPath": _fill(v.mount_path, spec), "readOnly": v.read_only}
        for v in config.volumes
    ]
    volumes = [{"name": "tmp", "emptyDir": {"sizeLimit": memory_quantity(config.tmp_size)}}]
    volumes += [_volume(v, spec) for v in config.volumes]
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": config.stop_grace_seconds,
        "securityContext": {
            "runAsUser": spec.uid,
            "runAsGroup": spec.gid,
            "supplementalGroups": sorted(set(spec.groups)),
            "fsGroup": spec.gid,
            "fsGroupChangePolicy": "OnRootMismatch",
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "lab",
                "image": image,
                "imagePullPolicy": config.image.pull_policy,
                "command": list(spec.command),
                "env": _env(spec),
                "workingDir": str(spec.home),
                "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
                "resources": {"requests": dict(resources), "limits": dict(resources)},
                "securityContext": copy.deepcopy(CONTAINER_SECURITY),
                "volumeMounts": mounts,
            }
        ],
        "volumes": volumes,
        **placement(config),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(spec.server),
            "namespace": namespace,
            "labels": {**LAB_LABELS, **user_labels(spec.user, spec.server)},
            "annotations": {
                USER_KEY: spec.user,
                SERVER_KEY: spec.server,
                ENVIRONMENT_KEY: spec.environment,
                SIZE_KEY: spec.size,
                IMAGE_KEY: image,
            },
        },
        "spec": pod_spec,
    }
