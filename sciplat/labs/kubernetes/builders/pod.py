"""The lab pod and the user's claims, from the lab spec and the ``kubernetes`` section."""

from __future__ import annotations

import copy
from collections.abc import Sequence
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
from sciplat.labs.kubernetes.builders.nss import NSS_NAME
from sciplat.labs.kubernetes.config import GroupDirectories, KubernetesConfig, KubeVolume
from sciplat.labs.kubernetes.models import KubeObject, LabGroup
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


def _nss() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ConfigMap's ``passwd`` and ``group`` over the image's files (mounts, volume)."""
    mounts = [
        {"name": "nss", "mountPath": f"/etc/{key}", "subPath": key, "readOnly": True}
        for key in ("passwd", "group")
    ]
    items = [{"key": key, "path": key, "mode": 0o644} for key in ("passwd", "group")]
    return mounts, [{"name": "nss", "configMap": {"name": NSS_NAME, "items": items}}]


def _group_directories(
    where: GroupDirectories | None, spec: LabSpec, groups: Sequence[LabGroup]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One volume holding every group's directory, mounted once per group that has one
    (mounts, volumes); nothing without ``where`` or such groups.

    Raises:
        ValueError: a group name that is not a plain directory name.
    """
    offered = sorted((g for g in groups if g.directory), key=lambda g: g.name)
    if where is None or not offered:
        return [], []
    mounts = []
    for group in offered:
        if "/" in group.name or group.name in (".", ".."):
            raise ValueError(f"group name {group.name!r} cannot name a directory")
        mounts.append(
            {
                "name": "groups",
                "mountPath": _fill(where.mount_path, spec).replace("{group}", group.name),
                "subPath": where.sub_path.replace("{group}", group.name),
                "readOnly": where.read_only,
            }
        )
    if where.kind == "nfs":
        source: dict[str, Any] = {"nfs": {"server": where.server, "path": where.path}}
        if where.read_only:
            source["nfs"]["readOnly"] = True
    else:
        source = {"hostPath": {"path": where.path, "type": "Directory"}}
    return mounts, [{"name": "groups", **source}]


def _env(spec: LabSpec) -> list[dict[str, str]]:
    env = dict(spec.env)
    url = env.get("JUPYTERHUB_SERVICE_URL")
    if url:
        # the hub hands out a loopback URL; in a pod the server must listen on the pod's IP
        parts = urlsplit(url)
        env["JUPYTERHUB_SERVICE_URL"] = urlunsplit(parts._replace(netloc=f"0.0.0.0:{spec.port}"))
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def build_pod(
    config: KubernetesConfig,
    spec: LabSpec,
    namespace: str,
    image: str,
    groups: Sequence[LabGroup] = (),
) -> KubeObject:
    """The lab pod: the user's UID/GIDs, non-root, no privilege escalation, no capabilities,
    read-only root filesystem with the configured volumes and a private /tmp writable,
    /etc/passwd and /etc/group from the namespace's ``sciplat-nss`` ConfigMap, and each of
    ``groups`` that has a directory at its ``group_directories`` mount.

    Raises:
        ValueError: the spec asks for UID or GID 0 (labs never run as root), or a group name
            cannot name a directory.
    """
    gids = sorted({*spec.groups, *(g.gid for g in groups if g.gid != spec.gid)})
    if spec.uid == 0 or spec.gid == 0 or 0 in gids:
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
    for more_mounts, more_volumes in (
        _nss(),
        _group_directories(config.group_directories, spec, groups),
    ):
        mounts += more_mounts
        volumes += more_volumes
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": config.stop_grace_seconds,
        "securityContext": {
            "runAsUser": spec.uid,
            "runAsGroup": spec.gid,
            "supplementalGroups": gids,
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
