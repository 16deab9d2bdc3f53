"""The Kubernetes lab backend: one namespace per user, a lab pod per server.

A start is a series of idempotent steps (namespace, pull secrets, quota, network policy,
passwd/group ConfigMap, claims, pod, running), each recorded in a :class:`Checkpoint` kept
in ``LabState.extra["kubernetes"]``.
Every object has a name computed from (user, server) alone, so a start after a hub restart
adopts what an interrupted start left (a running pod with the same image and size is
re-attached, a stale one replaced), and ``stop`` works from any checkpoint. A start that fails
removes the pod it made, and the namespace too if it made that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from sciplat.errors import LabError
from sciplat.labs.backend import LabBackend, Progress
from sciplat.labs.kubernetes import messages
from sciplat.labs.kubernetes.builders import lab_objects
from sciplat.labs.kubernetes.builders.common import (
    ENVIRONMENT_KEY,
    IMAGE_KEY,
    LAB_LABELS,
    MANAGED_BY,
    SERVER_KEY,
    SIZE_KEY,
    USER_KEY,
)
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import Checkpoint, KubeObject, LabGroup, NamespaceQuota
from sciplat.labs.kubernetes.pull_secrets import copy_pull_secrets
from sciplat.labs.kubernetes.storage.client import KubernetesApi, KubernetesApiError
from sciplat.labs.models import LabSpec, LabState, LabUsage

log = logging.getLogger(__name__)

EXTRA_KEY = "kubernetes"
#: a start's steps, in order (Checkpoint.steps)
STEPS = (
    "namespace", "pull-secrets", "quota", "network-policy", "nss", "claims", "pod", "running"
)  # fmt: skip
#: progress lines kept for error pages (log_tail)
_KEPT_LINES = 12


#: a user's groups by name, GID and whether they have a directory (group_storage not 0)
GroupsOf = Callable[[str], Sequence[LabGroup]]


class KubernetesBackend(LabBackend):
    """See the module docstring. ``quota_for(user)`` gives the user's namespace quota,
    ``groups_of(user)`` their groups (see :data:`GroupsOf`; None: only the GIDs of the lab
    spec are known, so /etc/group names them ``gGID`` and no group directory is mounted)."""

    name = "kubernetes"
    host_storage = False  # homes are the config's volumes, mounted into the pod

    def __init__(
        self,
        config: KubernetesConfig,
        api: KubernetesApi,
        quota_for: Callable[[str], NamespaceQuota],
        clock: Callable[[], float] = time.monotonic,
        groups_of: GroupsOf | None = None,
    ) -> None:
        self.config = config
        self.api = api
        self.quota_for = quota_for
        self.clock = clock
        self.groups_of = groups_of

    # -- start --------------------------------------------------------------------------------
    async def start(self, spec: LabSpec, progress: Progress) -> LabState:
        """Create (or adopt) every object of the lab and wait until the pod runs.

        Raises:
            LabError: refused by the cluster (quota, a foreign namespace), an image that cannot
                be pulled, a lab that ended or did not run in time; the message says what to do.
        """
        quota = await asyncio.to_thread(self.quota_for, spec.user)
        groups: Sequence[LabGroup] = ()
        if self.groups_of is not None:
            groups = await asyncio.to_thread(self.groups_of, spec.user)
        try:
            objects = lab_objects(self.config, spec, quota, groups)
        except ValueError as err:  # a UID or GID of 0 (never root), a name passwd cannot hold
            raise LabError(f"Your lab cannot start: {err}. Tell an administrator.") from err
        point = Checkpoint(
            namespace=objects.namespace["metadata"]["name"],
            pod=objects.pod["metadata"]["name"],
            image=objects.pod["metadata"]["annotations"][IMAGE_KEY],
        )

        def say(percent: int, line: str) -> None:
            point.last_message = "\n".join([*point.last_message.splitlines(), line][-_KEPT_LINES:])
            progress(percent, line)

        try:
            await self._namespace(objects.namespace, point, say)
            say(35, f"Namespace {point.namespace} ready")
            await self._pull_secrets(point, spec.user)
            point.steps.append("pull-secrets")
            await self._apply(objects.quota, "quota")
            point.steps.append("quota")
            await self._apply(objects.network_policy, "network policy")
            point.steps.append("network-policy")
            await self._apply(objects.nss, "user and group entries")
            point.steps.append("nss")
            for claim in objects.claims:
                await self._create(claim, f"storage claim {claim['metadata']['name']}", keep=True)
            point.steps.append("claims")
            say(45, f"Quota, network policy and {len(objects.claims)} storage claim(s) in place")
            say(45, messages.pids_note(spec.size, spec.limits.pids))
            await self._pod(objects.pod, point, say)
            point.steps.append("pod")
            pod = await self._wait_running(point, spec, say)
            point.steps.append("running")
        except BaseException:
            await self._undo(point)
            raise
        ip = str(pod["status"]["podIP"])
        say(86, f"Lab pod running at {ip}")
        return LabState(
            backend=self.name,
            slug=spec.slug,
            pid=0,
            start_time=0,
            ip=ip,
            port=spec.port,
            log_path=str(spec.log_path),
            environment=spec.environment,
            size=spec.size,
            started=time.time(),
            extra={EXTRA_KEY: point.to_dict()},
        )

    async def _namespace(self, namespace: KubeObject, point: Checkpoint, say: Progress) -> None:
        name = point.namespace
        deadline = self.clock() + self.config.start_timeout
        while (existing := await self._read("Namespace", "", name)) is not None:
            labels = existing["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in MANAGED_BY.items()):
                raise LabError(
                    f"The namespace {name} exists but was not made by the platform, so your lab "
                    "cannot use it. Tell an administrator."
                )
            if (existing.get("status") or {}).get("phase") != "Terminating":
                point.steps.append("namespace")
                return
            if self.clock() > deadline:
                raise LabError(messages.refused_message(403, "being terminated", "namespace"))
            say(30, f"Waiting for the previous namespace {name} to be removed")
            await asyncio.sleep(self.config.poll_seconds)
        point.created_namespace = await self._create(namespace, "namespace", keep=True)
        point.steps.append("namespace")

    async def _create(self, obj: KubeObject, what: str, keep: bool = False) -> bool:
        """Create ``obj``; True if made now, False if it existed and ``keep`` is set."""
        try:
            await self.api.create(obj)
        except KubernetesApiError as err:
            if err.status == 409 and keep:
                return False
            raise LabError(messages.refused_message(err.status, err.detail, what)) from err
        return True

    async def _apply(self, obj: KubeObject, what: str) -> None:
        """Create ``obj``, or replace the one there (the config or the quota may have changed)."""
        try:
            await self.api.apply(obj)
        except KubernetesApiError as err:
            raise LabError(messages.refused_message(err.status, err.detail, what)) from err

    async def _pull_secrets(self, point: Checkpoint, user: str) -> None:
        """Copy the image pull secrets into the user's namespace (the pod names them)."""
        try:
            await copy_pull_secrets(self.api, self.config, point.namespace, user)
        except KubernetesApiError as err:
            what = "copy of the image pull secrets"
            raise LabError(messages.refused_message(err.status, err.detail, what)) from err

    async def _read(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        try:
            return await self.api.read(kind, namespace, name)
        except KubernetesApiError as err:
            raise LabError(messages.refused_message(err.status, err.detail, kind.lower())) from err

    async def _pod(self, pod: KubeObject, point: Checkpoint, say: Progress) -> None:
        """Adopt a running pod of the same image and size, else (re)create it."""
        existing = await self._read("Pod", point.namespace, point.pod)
        if existing is not None:
            notes = existing["metadata"].get("annotations") or {}
            phase = (existing.get("status") or {}).get("phase")
            wanted = pod["metadata"]["annotations"]
            same = all(notes.get(k) == wanted[k] for k in (IMAGE_KEY, SIZE_KEY))
            alive = (
                phase in ("Pending", "Running") and "deletionTimestamp" not in existing["metadata"]
            )
            if same and alive:
                say(50, "Re-attaching to your lab, which is already running")
                return
            say(50, "Replacing a lab pod left from an earlier start")
            await self._delete_pod(point, grace=0)
        say(50, f"Creating the lab pod ({point.image})")
        if not await self._create(pod, "lab", keep=True):
            say(50, "Re-attaching to a lab pod created at the same moment")

    async def _wait_running(self, point: Checkpoint, spec: LabSpec, say: Progress) -> KubeObject:
        deadline = self.clock() + self.config.start_timeout
        seen: set[str] = set()
        unschedulable = ""
        percent = 50
        while True:
            try:
                pod = await self.api.read("Pod", point.namespace, point.pod)
            except KubernetesApiError as err:
                if err.status not in messages.TRANSIENT:
                    raise LabError(messages.refused_message(err.status, err.detail, "lab")) from err
                log.warning("reading pod %s/%s: %s", point.namespace, point.pod, err)
                pod = {}
            if pod is None:
                raise LabError("Your lab's pod was removed while it was starting. Start again.")
            for event in await self._events(point):
                uid = str(event.get("metadata", {}).get("uid", ""))
                if uid in seen:
                    continue
                seen.add(uid)
                if event.get("reason") == "FailedScheduling":
                    unschedulable = str(event.get("message", ""))
                percent = min(percent + 3, 85)
                say(percent, messages.event_line(event))
            status = pod.get("status") or {}
            if status.get("phase") == "Running" and status.get("podIP"):
                return pod
            if status.get("phase") in ("Failed", "Succeeded"):
                code, reason = messages.exit_status(pod)
                tail = await self._log(point)
                raise LabError(
                    messages.ended_message(code, reason, spec.size),
                    log_tail=tail or point.last_message,
                )
            problem = pod and messages.waiting_problem(pod, spec.environment)
            if problem:
                raise LabError(problem, log_tail=point.last_message)
            if self.clock() > deadline:
                raise LabError(
                    messages.timeout_message(self.config.start_timeout, unschedulable),
                    log_tail=point.last_message,
                )
            await asyncio.sleep(self.config.poll_seconds)

    async def _events(self, point: Checkpoint) -> list[KubeObject]:
        """The pod's events; best effort (progress lines only), so errors are only logged."""
        fields = f"involvedObject.kind=Pod,involvedObject.name={point.pod}"
        try:
            return await self.api.list("Event", point.namespace, fields=fields)
        except KubernetesApiError as err:
            log.warning("events of %s/%s: %s", point.namespace, point.pod, err)
            return []

    async def _log(self, point: Checkpoint, lines: int = 20) -> str:
        """The end of the lab container's log; best effort ("" when it cannot be read)."""
        try:
            return await self.api.pod_log(point.namespace, point.pod, lines)
        except KubernetesApiError as err:
            log.info("log of %s/%s: %s", point.namespace, point.pod, err)
            return ""

    async def _undo(self, point: Checkpoint) -> None:
        """After a failed start: remove the pod, and the namespace if this start made it.
        Best effort: a failure here is logged, and the next start or stop finishes the job."""
        try:
            if point.created_namespace:
                await self.api.delete("Namespace", "", point.namespace)
            elif "claims" in point.steps:  # the pod step had begun
                await self.api.delete("Pod", point.namespace, point.pod, grace_seconds=0)
        except KubernetesApiError as err:
            log.warning("cleaning up after a failed start in %s: %s", point.namespace, err)

    # -- what runs ------------------------------------------------------------------------------
    async def labs(self) -> list[LabState]:
        """Every lab pod of the platform in the cluster, as states ``poll`` and ``stop`` take:
        what a hub that died mid-start (or lost its database) no longer knows about.

        Raises:
            LabError: the cluster could not be listed.
        """
        try:
            pods = await self.api.list("Pod", "", labels=LAB_LABELS)
        except KubernetesApiError as err:
            raise LabError(messages.refused_message(err.status, err.detail, "lab list")) from err
        return [_state_of(pod) for pod in pods]

    # -- poll, stop ------------------------------------------------------------------------------
    def _checkpoint(self, state: LabState) -> Checkpoint:
        try:
            return Checkpoint.from_dict(state.extra[EXTRA_KEY])
        except (KeyError, TypeError) as exc:
            raise LabError(
                f"This lab was started by the {state.backend!r} backend, not by Kubernetes; "
                "an administrator must stop it with that backend."
            ) from exc

    async def poll(self, state: LabState) -> int | None:
        """None while the pod is pending or running; its exit code once it ended; 0 if gone.
        An API that does not answer counts as running (the next poll will know)."""
        point = self._checkpoint(state)
        try:
            pod = await self.api.read("Pod", point.namespace, point.pod)
        except KubernetesApiError as err:
            log.warning("polling %s/%s: %s", point.namespace, point.pod, err)
            return None
        if pod is None:
            return 0
        if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
            return None
        code, reason = messages.exit_status(pod)
        tail = await self._log(point)
        state.extra[EXTRA_KEY] = {**point.to_dict(), "exit_reason": reason, "log": tail}
        return code

    async def stop(self, state: LabState, now: bool = False) -> None:
        """Delete the lab pod and wait until it is gone; then delete the namespace if no other
        lab of the user runs there and no claim (the user's files) lives in it.

        Raises:
            LabError: the cluster refused or did not answer; stopping again is safe.
        """
        point = self._checkpoint(state)
        grace = 0 if now else self.config.stop_grace_seconds
        try:
            await self._delete_pod(point, grace)
            others = await self.api.list("Pod", point.namespace, labels=LAB_LABELS)
            keeps_files = any(v.kind == "pvc" for v in self.config.volumes)
            if not others and not keeps_files:
                await self.api.delete("Namespace", "", point.namespace)
        except KubernetesApiError as err:
            raise LabError(
                f"Your lab could not be stopped ({err.status}: {err.detail}). Try again; if it "
                "keeps happening, tell an administrator.",
            ) from err

    async def _delete_pod(self, point: Checkpoint, grace: int) -> None:
        """Delete the pod and wait (polling, with a deadline) until the API no longer has it.

        Raises:
            KubernetesApiError: the API refused.
            LabError: it was still there after its grace period plus a minute.
        """
        if not await self.api.delete("Pod", point.namespace, point.pod, grace_seconds=grace):
            return
        deadline = self.clock() + grace + 60
        while await self.api.read("Pod", point.namespace, point.pod) is not None:
            if self.clock() > deadline:
                raise LabError(
                    f"The lab pod {point.namespace}/{point.pod} did not go away. Tell an "
                    "administrator (a node may be down)."
                )
            await asyncio.sleep(self.config.poll_seconds)

    def usage(self, state: LabState) -> LabUsage:
        """Only what the pod's status told the last poll: an out-of-memory kill. CPU and memory
        use need the metrics API, which this backend does not read (zeros)."""
        extra = state.extra.get(EXTRA_KEY) or {}
        return LabUsage(oom_kills=1 if extra.get("exit_reason") == "OOMKilled" else 0)

    def log_tail(self, state: LabState, lines: int = 20) -> str:
        """The end of the container's log as the last ``poll`` of an ended lab read it, else
        the last events its start saw (the interface is synchronous; reading a log is not)."""
        extra = state.extra.get(EXTRA_KEY) or {}
        text = str(extra.get("log") or extra.get("last_message") or "")
        return "\n".join(text.splitlines()[-lines:])


def _state_of(pod: KubeObject) -> LabState:
    """The state of a lab found in the cluster, rebuilt from the pod's annotations."""
    meta, status = pod["metadata"], pod.get("status") or {}
    notes = meta.get("annotations") or {}
    user, server = str(notes.get(USER_KEY, "")), str(notes.get(SERVER_KEY, ""))
    ports = (pod["spec"]["containers"][0].get("ports") or [{}])[0]
    running = status.get("phase") == "Running"
    point = Checkpoint(
        namespace=str(meta["namespace"]),
        pod=str(meta["name"]),
        image=str(notes.get(IMAGE_KEY, "")),
        steps=[*STEPS[:-1], *["running"] * running],
    )
    return LabState(
        backend=KubernetesBackend.name,
        slug=f"{user}--{server}" if server else user,
        pid=0,
        start_time=0,
        ip=str(status.get("podIP", "")),
        port=int(ports.get("containerPort", 0)),
        log_path="",
        environment=str(notes.get(ENVIRONMENT_KEY, "")),
        size=str(notes.get(SIZE_KEY, "")),
        extra={EXTRA_KEY: point.to_dict()},
    )
