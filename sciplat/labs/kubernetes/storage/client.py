"""The Kubernetes API, as the backend uses it: create, read, replace, delete and list plain
JSON objects by kind. The only module that imports a Kubernetes client (kubernetes_asyncio).

Objects go in and come out as dicts (``_preload_content=False``), so the builders' output is
sent as written and nothing is lost in a round trip through the client's model classes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from sciplat.errors import LabError
from sciplat.labs.kubernetes.models import KubeObject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Kind:
    api: str  # kubernetes_asyncio API class
    suffix: str  # method name after create_/read_/...
    namespaced: bool = True


KINDS = {
    "Namespace": _Kind("CoreV1Api", "namespace", namespaced=False),
    "ResourceQuota": _Kind("CoreV1Api", "namespaced_resource_quota"),
    "PersistentVolumeClaim": _Kind("CoreV1Api", "namespaced_persistent_volume_claim"),
    "Pod": _Kind("CoreV1Api", "namespaced_pod"),
    "Secret": _Kind("CoreV1Api", "namespaced_secret"),
    "ConfigMap": _Kind("CoreV1Api", "namespaced_config_map"),
    "Event": _Kind("CoreV1Api", "namespaced_event"),
    "NetworkPolicy": _Kind("NetworkingV1Api", "namespaced_network_policy"),
    "DaemonSet": _Kind("AppsV1Api", "namespaced_daemon_set"),
}


class KubernetesApiError(LabError):
    """The API answered with an error (or could not be reached: status 0)."""

    code = "kubernetes_api"

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"Kubernetes API error {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.detail = message


class KubernetesApi:
    """A thin asyncio client: one connection pool, made on first use in the running loop."""

    def __init__(
        self, configuration: k8s.Configuration | None = None, kubeconfig: str = ""
    ) -> None:
        self._configuration = configuration
        self._kubeconfig = kubeconfig
        self._client: k8s.ApiClient | None = None

    @classmethod
    def for_host(cls, host: str) -> KubernetesApi:
        """A client of the API server at ``host`` (a URL) without credentials (tests)."""
        configuration = k8s.Configuration(host=host)
        return cls(configuration)

    async def _api(self, name: str) -> Any:
        """The API class ``name`` on the shared connection pool.

        Raises:
            LabError: no credentials (kubeconfig missing or unreadable, not in a cluster).
        """
        if self._client is None:
            configuration = self._configuration
            if configuration is None:
                configuration = k8s.Configuration()
                try:
                    if self._kubeconfig:
                        await k8s_config.load_kube_config(
                            config_file=self._kubeconfig, client_configuration=configuration
                        )
                    else:
                        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                            client_configuration=configuration
                        )
                except (k8s_config.ConfigException, OSError) as exc:
                    where = self._kubeconfig or "the in-cluster service account"
                    raise LabError(
                        f"The platform cannot reach its Kubernetes cluster: cannot load {where} "
                        f"({exc}). Tell an administrator to set kubernetes.kubeconfig."
                    ) from exc
            self._client = k8s.ApiClient(configuration)
        return getattr(k8s, name)(self._client)

    async def close(self) -> None:
        """Close the connection pool (a later call opens a new one)."""
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _call(self, verb: str, kind: str, *args: Any, **kwargs: Any) -> KubeObject:
        spec = KINDS.get(kind)
        if spec is None:
            raise ValueError(f"kind {kind!r} is not one the backend manages")
        api = await self._api(spec.api)
        body = await _send(getattr(api, f"{verb}_{spec.suffix}"), *args, **kwargs)
        data: KubeObject = json.loads(body) if body else {}
        return data

    async def pod_log(self, namespace: str, name: str, lines: int = 20) -> str:
        """The last ``lines`` lines of the pod's (only) container's log.

        Raises:
            KubernetesApiError: 404 no such pod, 400 its container never started, others as
                the API answered.
        """
        api = await self._api("CoreV1Api")
        return await _send(api.read_namespaced_pod_log, name, namespace, tail_lines=lines)

    async def create(self, obj: KubeObject) -> KubeObject:
        """Create ``obj``.

        Raises:
            KubernetesApiError: 409 if it exists, 404 if its namespace does not, 403 if
                refused (a ResourceQuota, admission), others as the API answered.
        """
        kind, namespace, _ = _identity(obj)
        if KINDS[kind].namespaced:
            return await self._call("create", kind, namespace, obj)
        return await self._call("create", kind, obj)

    async def replace(self, obj: KubeObject) -> KubeObject:
        """Replace ``obj`` (unconditionally: the builders own these objects).

        Raises:
            KubernetesApiError: 404 if it does not exist; others as the API answered.
        """
        kind, namespace, name = _identity(obj)
        if KINDS[kind].namespaced:
            return await self._call("replace", kind, name, namespace, obj)
        return await self._call("replace", kind, name, obj)

    async def apply(self, obj: KubeObject) -> KubeObject:
        """Create ``obj``, or replace the one of its name (create, then update on 409: the
        verbs the hub's RBAC grants, no patch).

        Raises:
            KubernetesApiError: as :meth:`create` and :meth:`replace`.
        """
        try:
            return await self.create(obj)
        except KubernetesApiError as err:
            if err.status != 409:
                raise
        return await self.replace(obj)

    async def read(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        """The object, or None if there is none.

        Raises:
            KubernetesApiError: any error but 404.
        """
        try:
            if KINDS[kind].namespaced:
                return await self._call("read", kind, name, namespace)
            return await self._call("read", kind, name)
        except KubernetesApiError as err:
            if err.status == 404:
                return None
            raise

    async def delete(
        self, kind: str, namespace: str, name: str, grace_seconds: int | None = None
    ) -> bool:
        """Ask for the object's deletion; False if it was already gone.

        Raises:
            KubernetesApiError: any error but 404.
        """
        options: dict[str, Any] = {"propagation_policy": "Background"}
        if grace_seconds is not None:
            options["grace_period_seconds"] = grace_seconds
        try:
            if KINDS[kind].namespaced:
                await self._call("delete", kind, name, namespace, **options)
            else:
                await self._call("delete", kind, name, **options)
        except KubernetesApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    async def list(
        self, kind: str, namespace: str, labels: dict[str, str] | None = None, fields: str = ""
    ) -> list[KubeObject]:
        """Objects of ``kind`` in ``namespace`` (every namespace when it is "") matching
        ``labels`` and the field selector.

        Raises:
            KubernetesApiError: as the API answered.
        """
        options: dict[str, Any] = {}
        if labels:
            options["label_selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        if fields:
            options["field_selector"] = fields
        spec = KINDS[kind]
        if spec.namespaced and not namespace:
            api = await self._api(spec.api)
            every = getattr(
                api, f"list_{spec.suffix.removeprefix('namespaced_')}_for_all_namespaces"
            )
            body = await _send(every, **options)
            data = json.loads(body) if body else {}
        else:
            data = await self._call("list", kind, *([namespace] if namespace else []), **options)
        items: list[KubeObject] = data.get("items") or []
        return items


async def _send(method: Any, *args: Any, **kwargs: Any) -> str:
    """Call one generated API method and return the response's body.

    Raises:
        KubernetesApiError: an error status, or no answer (status 0).
    """
    try:
        response = await method(*args, _preload_content=False, **kwargs)
    except k8s.ApiException as exc:  # transport failures surface as status 0
        raise KubernetesApiError(exc.status or 0, str(exc.reason), str(exc.body or "")) from exc
    except (OSError, aiohttp.ClientError) as exc:
        raise KubernetesApiError(0, "Unreachable", str(exc)) from exc
    async with response:
        body = str(await response.text())
        if not 200 <= response.status <= 299:
            raise _error(response.status, body)
    return body


def _identity(obj: KubeObject) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one the backend manages")
    return kind, str(meta.get("namespace", "")), str(meta.get("name", ""))


def _error(status: int, body: str) -> KubernetesApiError:
    """The API's Status object (reason, message) as an error."""
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return KubernetesApiError(
        status, str(data.get("reason") or "Error"), str(data.get("message") or body[:200])
    )
