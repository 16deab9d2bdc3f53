"""An in-memory Kubernetes API server for tests: real HTTP on 127.0.0.1 (aiohttp, in the
test's event loop), so the backend runs its real client code (kubernetes_asyncio) end to end.

What it does: create/read/replace/delete/list of namespaced and cluster objects under the
API's real paths; 404 NotFound, 409 AlreadyExists, 403 for content in a terminating
namespace; label and field selectors; a namespace deletion removes its content (after
``terminating_reads`` reads in phase Terminating); pods move Pending → scheduled → pulling →
Running one step per read of the pod, writing the events a kubelet writes; images can be made
unpullable and pods unschedulable; any request can be made to fail (:meth:`fail`).

What it does not do (docs/architecture.md, "parity list"): admission (PodSecurity, webhooks),
defaulting, schema validation, quota accounting, RBAC, graceful pod termination.

    async with FakeKubernetes() as fake:
        api = KubernetesApi.for_host(fake.url)
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

PLURALS = {
    "Namespace": "namespaces",
    "ResourceQuota": "resourcequotas",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Pod": "pods",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Event": "events",
    "NetworkPolicy": "networkpolicies",
    "DaemonSet": "daemonsets",
}
#: the namespace of a request for every namespace (``/api/v1/pods``)
EVERY = "*"
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


@dataclass
class Call:
    method: str  # GET POST PUT DELETE
    plural: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.method} {self.plural} {self.namespace}/{self.name}".rstrip("/")


@dataclass
class Fault:
    status: int
    message: str
    reason: str
    method: str | None = None
    plural: str | None = None
    nth: int | None = None  # fail the request with this index (0-based) only
    times: int = 1

    def matches(self, call: Call, index: int) -> bool:
        if self.times <= 0:
            return False
        if self.nth is not None:
            return index == self.nth
        return (self.method in (None, call.method)) and (self.plural in (None, call.plural))


class FakeKubernetes:
    """See the module docstring."""

    def __init__(self) -> None:
        #: (plural, namespace, name) -> object; cluster objects have namespace ""
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        #: image reference -> the registry's answer to a pull
        self.unpullable: dict[str, str] = {}
        #: when set, every pod stays Pending with this FailedScheduling message
        self.unschedulable = ""
        #: the IP a running pod gets (a test that needs to reach the lab sets 127.0.0.1)
        self.pod_ip = ""
        #: reads of a deleted namespace that still show it Terminating
        self.terminating_reads = 0
        #: (namespace, pod) -> what the lab container wrote
        self.logs: dict[tuple[str, str], str] = {}
        self._stage: dict[tuple[str, str], int] = {}
        self._terminating: dict[str, int] = {}
        self._counter = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- life ---------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeKubernetes:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests use -------------------------------------------------------------------------
    def fail(
        self,
        status: int = 500,
        *,
        method: str | None = None,
        plural: str | None = None,
        nth: int | None = None,
        times: int = 1,
        message: str = "injected failure",
        reason: str = "InternalError",
    ) -> None:
        """Make matching requests (or request number ``nth``) fail ``times`` times."""
        self.faults.append(Fault(status, message, reason, method, plural, nth, times))

    def add(self, obj: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store ``obj`` as if someone else had created it (no request is recorded)."""
        meta = obj["metadata"]
        stored = copy.deepcopy(obj)
        stored["metadata"].update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(next(self._counter)),
            creationTimestamp="2026-11-28T12:00:00Z",
        )
        if status is not None:
            stored["status"] = copy.deepcopy(status)
        key = (PLURALS[obj["kind"]], str(meta.get("namespace", "")), str(meta["name"]))
        self.objects[key] = stored
        if obj["kind"] == "Pod":
            running = (status or {}).get("phase") == "Running"
            self._stage[key[1:]] = 99 if running else 0
        return stored

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((PLURALS[kind], namespace, name))

    def names(self, kind: str, namespace: str = "") -> list[str]:
        plural = PLURALS[kind]
        return sorted(n for (p, ns, n) in self.objects if p == plural and ns == namespace)

    def terminate_pod(
        self, namespace: str, name: str, exit_code: int = 1, reason: str = "Error", log: str = ""
    ) -> None:
        """The lab's process ended (``OOMKilled`` with 137 for an out-of-memory kill), having
        written ``log``."""
        pod = self.objects[("pods", namespace, name)]
        self.logs[(namespace, name)] = log
        pod["status"]["phase"] = "Succeeded" if exit_code == 0 else "Failed"
        pod["status"]["containerStatuses"] = [
            {
                "name": "lab",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": exit_code, "reason": reason}},
            }
        ]
        self._stage[(namespace, name)] = 99

    # -- HTTP ------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        route = _route(request.path)
        if route is None:
            return _status(404, "NotFound", f"no route {request.path}")
        call = Call(request.method, *route)
        index = len(self.calls)
        self.calls.append(call)
        for fault in self.faults:
            if fault.matches(call, index):
                fault.times -= 1
                return _status(fault.status, fault.reason, fault.message)
        body = await request.json() if request.can_read_body else None
        plural, namespace, name = route
        if plural == "pods/log":
            return self._log(namespace, name, int(request.query.get("tailLines", "0")))
        if not name:
            if request.method == "POST":
                return self._create(plural, namespace, body)
            return self._list(plural, namespace, request.query)
        handlers = {
            "GET": lambda: self._read(plural, namespace, name),
            "PUT": lambda: self._replace(plural, namespace, name, body),
            "DELETE": lambda: self._delete(plural, namespace, name),
        }
        handler = handlers.get(request.method)
        return handler() if handler else _status(405, "MethodNotAllowed", request.method)

    def _create(self, plural: str, namespace: str, body: Any) -> web.Response:
        refusal = self._refuse(plural, namespace, body)
        if refusal is not None:
            return refusal
        name = str(body["metadata"]["name"])
        body["metadata"]["namespace"] = namespace or None
        if not namespace:
            body["metadata"].pop("namespace")
        key = (plural, namespace, name)
        if key in self.objects:
            return _status(409, "AlreadyExists", f'{plural} "{name}" already exists')
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(next(self._counter)),
            creationTimestamp="2026-11-28T12:00:00Z",
        )
        if plural == "namespaces":
            obj["status"] = {"phase": "Active"}
        if plural == "pods":
            obj["status"] = {"phase": "Pending"}
            self._stage[(namespace, name)] = 0
        self.objects[key] = obj
        return web.json_response(obj, status=201)

    def _log(self, namespace: str, name: str, lines: int) -> web.Response:
        pod = self.objects.get(("pods", namespace, name))
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found')
        if pod["status"].get("phase") == "Pending":
            message = f'container "lab" in pod "{name}" is waiting to start: ContainerCreating'
            return _status(400, "BadRequest", message)
        text = self.logs.get((namespace, name), "").splitlines()
        return web.Response(
            text="\n".join(text[-lines:] if lines else text), content_type="text/plain"
        )

    def _refuse(  # noqa: PLR0911 - one return per refusal the API server makes
        self, plural: str, namespace: str, body: Any
    ) -> web.Response | None:
        """Why a create must fail (bad body, bad name, no or terminating namespace)."""
        if not isinstance(body, dict) or PLURALS.get(str(body.get("kind"))) != plural:
            return _status(400, "BadRequest", f"the body is not a {plural} object")
        meta = body.setdefault("metadata", {})
        name = str(meta.get("name", ""))
        pattern = _DNS_LABEL if plural in ("namespaces", "pods") else _DNS_SUBDOMAIN
        if not pattern.match(name):
            return _status(422, "Invalid", f"metadata.name {name!r} is not a valid name")
        if not namespace:
            return None
        if meta.get("namespace", namespace) != namespace:
            return _status(400, "BadRequest", "the namespace of the object does not match")
        if ("namespaces", "", namespace) not in self.objects:
            return _status(404, "NotFound", f'namespaces "{namespace}" not found')
        if namespace in self._terminating:
            return _status(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is "
                "being terminated",
            )
        return None

    def _read(self, plural: str, namespace: str, name: str) -> web.Response:
        if plural == "namespaces" and name in self._terminating:
            self._terminating[name] -= 1
            if self._terminating[name] < 0:
                self._purge(name)
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            return _status(404, "NotFound", f'{plural} "{name}" not found')
        if plural == "pods":
            self._advance(obj)
        return web.json_response(obj)

    def _replace(self, plural: str, namespace: str, name: str, body: Any) -> web.Response:
        old = self.objects.get((plural, namespace, name))
        if old is None:
            return _status(404, "NotFound", f'{plural} "{name}" not found')
        if not isinstance(body, dict) or body.get("metadata", {}).get("name") != name:
            return _status(400, "BadRequest", "the name of the object does not match")
        obj = copy.deepcopy(body)
        obj["metadata"].update(
            uid=old["metadata"]["uid"],
            resourceVersion=str(next(self._counter)),
            creationTimestamp=old["metadata"]["creationTimestamp"],
            namespace=namespace or None,
        )
        if not namespace:
            obj["metadata"].pop("namespace")
        if "status" in old:
            obj["status"] = old["status"]
        self.objects[(plural, namespace, name)] = obj
        return web.json_response(obj)

    def _delete(self, plural: str, namespace: str, name: str) -> web.Response:
        obj = self.objects.get((plural, namespace, name))
        if obj is None:
            return _status(404, "NotFound", f'{plural} "{name}" not found')
        if plural == "namespaces":
            if self.terminating_reads > 0:
                obj["status"] = {"phase": "Terminating"}
                self._terminating.setdefault(name, self.terminating_reads)
            else:
                self._purge(name)
        else:
            del self.objects[(plural, namespace, name)]
            self._stage.pop((namespace, name), None)
        return web.json_response({"kind": "Status", "status": "Success"})

    def _purge(self, namespace: str) -> None:
        self._terminating.pop(namespace, None)
        for key in [
            k for k in self.objects if k[1] == namespace or k == ("namespaces", "", namespace)
        ]:
            del self.objects[key]

    def _list(self, plural: str, namespace: str, query: Any) -> web.Response:
        labels = _selector(query.get("labelSelector", ""))
        fields = _selector(query.get("fieldSelector", ""))
        items = [
            obj
            for (p, ns, _), obj in sorted(self.objects.items())
            if p == plural
            and namespace in (ns, EVERY)
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
            and all(_field(obj, k) == v for k, v in fields.items())
        ]
        return web.json_response({"kind": "List", "items": items, "metadata": {}})

    # -- a kubelet's worth of pod life -------------------------------------------------------------
    def _event(self, pod: dict[str, Any], reason: str, message: str, kind: str = "Normal") -> None:
        meta = pod["metadata"]
        n = next(self._counter)
        name = f"{meta['name']}.{n:08x}"
        self.objects[("events", meta["namespace"], name)] = {
            "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"], "uid": str(uuid.uuid4())},
            "involvedObject": {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"]},
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
        }

    def _advance(self, pod: dict[str, Any]) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        stage = self._stage.get(key, 99)
        image = pod["spec"]["containers"][0]["image"]
        status = pod["status"]
        if stage == 0:
            if self.unschedulable:
                self._event(pod, "FailedScheduling", self.unschedulable, "Warning")
                status["conditions"] = [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
                ]
                return
            pod["spec"]["nodeName"] = "node-1"
            status["conditions"] = [{"type": "PodScheduled", "status": "True"}]
            self._event(pod, "Scheduled", f"Successfully assigned {key[0]}/{key[1]} to node-1")
        elif stage == 1:
            self._event(pod, "Pulling", f'Pulling image "{image}"')
            if image in self.unpullable:
                message = f'Failed to pull image "{image}": {self.unpullable[image]}'
                self._event(pod, "Failed", message, "Warning")
                status["containerStatuses"] = [
                    {
                        "name": "lab",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": "ErrImagePull", "message": message}},
                    }
                ]
                return
        elif stage == 2:
            self._event(pod, "Pulled", f'Successfully pulled image "{image}"')
            self._event(pod, "Created", "Created container lab")
            self._event(pod, "Started", "Started container lab")
            status.update(
                phase="Running",
                podIP=self.pod_ip or f"10.1.0.{next(self._counter) % 250 + 2}",
                containerStatuses=[
                    {"name": "lab", "ready": True, "restartCount": 0, "state": {"running": {}}}
                ],
            )
        else:
            return
        self._stage[key] = stage + 1


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port in the running loop: its runner and base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


def _route(path: str) -> tuple[str, str, str] | None:
    """(plural, namespace, name) of an API path; None if it is not one the fake serves."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        rest = parts[3:]
    else:
        return None
    if len(rest) == 1 and rest[0] != "namespaces":  # a namespaced kind in every namespace
        return rest[0], EVERY, ""
    if rest[:1] != ["namespaces"] or len(rest) > 5 or (len(rest) == 5 and rest[4] != "log"):
        return None
    if len(rest) == 5:
        return "pods/log", rest[1], rest[3]
    if len(rest) <= 2:
        return "namespaces", "", rest[1] if len(rest) == 2 else ""
    return rest[2], rest[1], rest[3] if len(rest) == 4 else ""


def _selector(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part, {}) if isinstance(value, dict) else {}
    return value if isinstance(value, str) else ""
