"""Kubernetes objects for many users: how long the pure builders take to render one user's
objects (namespace, quota, network policy, passwd/group ConfigMap, claims, pod with its group
directories), and how long kubernetes-validate
takes to check them strictly against one Kubernetes minor's schemas.

    .venv/bin/python bench/k8s_render.py                 # 1,000 users, Kubernetes 1.37
    .venv/bin/python bench/k8s_render.py --users 200 --version 1.35 --json /tmp/k8s.json

Needs the test extras (kubernetes-validate). Prints per-user times (median and 95th
percentile) and totals; exits non-zero if any object fails validation.

kubernetes-validate's ``validate()`` reads and parses the schema files (a few MB of JSON) on
every call, ~0.1 s per object; so the 1,000 users are validated with one jsonschema validator
per kind built once from the same schema files (:class:`SchemaCache`), and the library's own
``validate()`` is timed on the first ``--uncached`` users for comparison.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from sciplat.labs.kubernetes.builders import lab_objects
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import LabGroup, NamespaceQuota
from sciplat.labs.models import LabLimits, LabSpec

CONFIG = KubernetesConfig.model_validate(
    {
        "image": {"registry": "registry.example.org", "pull_secrets": ["pull"]},
        "node_selector": {"sciplat.io/role": "lab"},
        "volumes": [
            {"name": "home", "kind": "pvc", "mount_path": "{home}", "size": "10GiB"},
            {"name": "scratch", "kind": "nfs", "mount_path": "/scratch",
             "server": "nfs.example.org", "path": "/export/scratch/{user}"},
        ],
        "egress": [{"name": "tap", "pod_labels": {"app.kubernetes.io/component": "tap"}}],
        "group_directories": {"kind": "nfs", "server": "nfs.example.org", "path": "/export/groups"},
    }
)  # fmt: skip
QUOTA = NamespaceQuota(cores=8, memory=32 * 1024**3, pods=2, pvcs=1)


class SchemaCache:
    """kubernetes-validate's strict schemas of one minor, one validator per kind, built once
    (the same files and the same jsonschema draft as ``kubernetes_validate.validate``)."""

    def __init__(self, version: str) -> None:
        self.directory = f"kubernetes-json-schema/v{version}.0-local-strict"
        definitions = schema_contents(f"{self.directory}/_definitions.json", version)
        self.version = version
        self.registry: Registry = Resource.from_contents(definitions) @ Registry()
        self.validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}

    def validate(self, obj: dict[str, object]) -> None:
        """Raises: jsonschema.ValidationError: ``obj`` breaks the schema of its kind."""
        key = (str(obj["kind"]), str(obj["apiVersion"]))
        if key not in self.validators:
            api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", key[1])
            schema = schema_contents(f"{self.directory}/{key[0].lower()}-{api}.json", self.version)
            registry = Resource.from_contents(schema) @ self.registry
            self.validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
        self.validators[key].validate(obj)


def groups_of(index: int) -> list[LabGroup]:
    """Two groups per user, the second without a directory every third user (group_storage 0)."""
    second = 300002 + index % 7
    return [LabGroup("astro", 300001), LabGroup(f"team{second}", second, index % 3 != 0)]


def spec_of(index: int) -> LabSpec:
    user = f"user_{index:05d}"  # the underscore makes every namespace name take the hash path
    return LabSpec(
        user=user,
        server="" if index % 4 else "big",
        uid=200000 + index,
        gid=200000 + index,
        groups=(300001, 300002 + index % 7),
        home=Path(f"/home/{user}"),
        environment="w_2026_47",
        size="medium",
        command=("/opt/lab/bin/jupyterhub-singleuser",),
        env={"JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:8888/user/{user}/", "LANG": "C.UTF-8"},
        limits=LabLimits(cpu=2, memory=8 * 1024**3, pids=1024),
        ip="127.0.0.1",
        port=8888,
        log_path=Path(f"/srv/logs/{user}.log"),
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--version", default="1.37", help="Kubernetes minor to validate against")
    parser.add_argument("--json", type=Path, help="also write the raw per-user times here")
    parser.add_argument(
        "--uncached", type=int, default=20, help="users also validated with validate() itself"
    )
    args = parser.parse_args()
    schemas = SchemaCache(args.version)
    broken = lab_objects(CONFIG, spec_of(0), QUOTA, groups_of(0)).pod
    broken["spec"]["containers"][0]["securityContext"]["dropCapabilities"] = ["ALL"]
    try:
        schemas.validate(broken)
    except jsonschema.ValidationError:
        pass
    else:
        sys.exit("the cached validator accepted a pod with an unknown field: not strict")
    library: list[float] = []

    render: list[float] = []
    validate: list[float] = []
    names: set[str] = set()
    objects_total = failures = 0
    for index in range(args.users):
        spec = spec_of(index)
        start = time.perf_counter()
        objects = lab_objects(CONFIG, spec, QUOTA, groups_of(index)).all()
        render.append(time.perf_counter() - start)
        names.add(objects[0]["metadata"]["name"])
        start = time.perf_counter()
        for obj in objects:
            try:
                schemas.validate(obj)
            except jsonschema.ValidationError as err:
                failures += 1
                print(f"{spec.user}: {obj['kind']}: {err.message}", file=sys.stderr)
        validate.append(time.perf_counter() - start)
        if index < args.uncached:
            start = time.perf_counter()
            for obj in objects:
                kubernetes_validate.validate(obj, args.version, strict=True)
            library.append(time.perf_counter() - start)
        objects_total += len(objects)

    def line(what: str, values: list[float]) -> str:
        return (
            f"{what:<10} per user: median {statistics.median(values) * 1e3:7.3f} ms, "
            f"p95 {percentile(values, 0.95) * 1e3:7.3f} ms, total {sum(values):6.2f} s"
        )

    print(f"{args.users} users, {objects_total} objects, Kubernetes {args.version} schemas")
    print(line("render", render))
    print(line("validate", validate))
    if library:
        print(line("validate()", library) + f" ({len(library)} users, schemas re-read per call)")
    print(f"distinct namespaces: {len(names)}; objects failing validation: {failures}")
    if args.json:
        args.json.write_text(
            json.dumps({"render": render, "validate": validate, "validate_library": library})
        )
    return 1 if failures or len(names) != args.users else 0


if __name__ == "__main__":
    sys.exit(main())
