"""A lab spec and a ``kubernetes`` section that use every feature, shared by these tests."""

from __future__ import annotations

from pathlib import Path

from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import LabGroup
from sciplat.labs.models import LabLimits, LabSpec

#: the section as an operator would write it in sciplat.yaml
FULL_SECTION = {
    "namespace_prefix": "sp",
    "image": {
        "registry": "registry.example.org",
        "repository": "sciplat/lab",
        "pull_secrets": ["registry-credentials"],
    },
    "node_selector": {"sciplat.io/role": "lab"},
    "storage_class": "fast",
    "volumes": [
        {"name": "home", "kind": "pvc", "mount_path": "{home}", "size": "10GiB"},
        {
            "name": "scratch",
            "kind": "nfs",
            "mount_path": "/scratch",
            "server": "nfs.example.org",
            "path": "/export/scratch/{user}",
        },
        {
            "name": "public",
            "kind": "nfs",
            "mount_path": "/data/public",
            "server": "nfs.example.org",
            "path": "/export/public",
            "read_only": True,
        },
    ],
    "egress": [
        {"name": "tap", "pod_labels": {"app.kubernetes.io/component": "tap"},
         "namespace_labels": {"kubernetes.io/metadata.name": "sciplat"}, "ports": [8080]},
        {"name": "catalogue-db", "cidr": "10.20.0.0/16", "ports": [5432]},
    ],
    "tmp_size": "2GiB",
    "group_directories": {"kind": "nfs", "server": "nfs.example.org", "path": "/export/groups"},
}  # fmt: skip
#: alice's groups: two with a shared directory, one whose group_storage quota is 0
GROUPS = (
    LabGroup("astro", 300001), LabGroup("survey", 300002), LabGroup("archive", 300003, False)
)  # fmt: skip


def full_config(**changes: object) -> KubernetesConfig:
    return KubernetesConfig.model_validate({**FULL_SECTION, **changes})


def lab_spec(user: str = "alice", server: str = "", **changes: object) -> LabSpec:
    fields: dict[str, object] = {
        "user": user,
        "server": server,
        "uid": 200001,
        "gid": 200001,
        "groups": (300002, 300001, 300003),
        "home": Path(f"/home/{user}"),
        "environment": "w_2026_47",
        "size": "medium",
        "command": ("/opt/lab/bin/jupyterhub-singleuser",),
        "env": {
            "HOME": f"/home/{user}",
            "JUPYTERHUB_SERVICE_PREFIX": f"/user/{user}/",
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:41234/user/{user}/",
            "LANG": "C.UTF-8",
        },
        "limits": LabLimits(cpu=1.5, memory=4 * 1024**3, pids=1024),
        "ip": "127.0.0.1",
        "port": 41234,
        "log_path": Path(f"/srv/logs/{user}.log"),
    }
    fields.update(changes)
    return LabSpec(**fields)  # type: ignore[arg-type]
