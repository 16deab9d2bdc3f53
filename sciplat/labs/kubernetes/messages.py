"""Pure: what the cluster says about a lab, turned into what a scientist can act on."""

from __future__ import annotations

from sciplat.labs.kubernetes.models import KubeObject

#: container waiting reasons that mean the image cannot be had
IMAGE_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
#: container waiting reasons that mean the pod's own description is wrong
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
#: statuses worth another try (the API server busy, restarting or unreachable)
TRANSIENT = frozenset({0, 429, 500, 502, 503, 504})


def refused_message(status: int, detail: str, what: str) -> str:
    """Why creating ``what`` was refused, and what to do."""
    low = detail.lower()
    if status == 403 and "exceeded quota" in low:
        return (
            "Your labs already use all of your quota on the cluster "
            f"({detail.split(':', 1)[-1].strip()}). Stop another lab, or pick a smaller size."
        )
    if status == 403 and "being terminated" in low:
        return "Your previous lab is still being removed. Wait a minute and start again."
    if status in TRANSIENT:
        return (
            f"The cluster did not answer while creating your {what} ({status}). Try again in "
            "a minute; if it keeps happening, tell an administrator."
        )
    return (
        f"The cluster refused your {what} ({status}: {detail}). Tell an administrator: the "
        "platform's Kubernetes settings need fixing."
    )


def pids_note(size: str, pids: int) -> str:
    """The spawn log's line on the size's process limit, which pods cannot have: Kubernetes
    limits processes per pod only node-wide (the kubelet's ``podPidsLimit``)."""
    return (
        f"Size {size}'s limit of {pids} processes is not applied on Kubernetes: this lab has "
        "the limit the cluster's nodes set for every pod (the kubelet's podPidsLimit)"
    )


def waiting_problem(pod: KubeObject, environment: str) -> str | None:
    """A message if the lab container is stuck for a reason waiting will not cure."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        detail = waiting.get("message", "")
        if reason in IMAGE_REASONS:
            return (
                f"The environment {environment!r} could not be downloaded to the cluster "
                f"({reason}: {detail}). Pick another environment, and tell an administrator "
                "that its image is missing or unreadable."
            )
        if reason in CONFIG_REASONS:
            return (
                f"The lab could not be created ({reason}: {detail}). Tell an administrator: "
                "the platform's Kubernetes settings need fixing."
            )
    return None


def exit_status(pod: KubeObject) -> tuple[int, str]:
    """Exit code and reason of a finished lab container (1 and "" when unknown)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        done = (status.get("state") or {}).get("terminated")
        if done:
            return int(done.get("exitCode", 1)), str(done.get("reason", ""))
    return 1, str((pod.get("status") or {}).get("reason", ""))


def ended_message(code: int, reason: str, size: str) -> str:
    """Why a lab ended while it was starting."""
    if reason == "OOMKilled":
        return f"Your lab ran out of memory while starting (size {size}). Pick a larger size."
    return (
        f"Your lab stopped while starting (exit status {code}{', ' + reason if reason else ''}). "
        "If you changed ~/.jupyter or installed packages with `pip install --user`, start with "
        "'reset my environment'; otherwise tell an administrator."
    )


def timeout_message(seconds: int, unschedulable: str) -> str:
    """Why a lab did not run within ``seconds``."""
    if unschedulable:
        return (
            f"No node of the cluster had room for your lab within {seconds} s "
            f"({unschedulable}). Pick a smaller size, or try again later."
        )
    return (
        f"Your lab did not start within {seconds} s (its image may still be downloading). "
        "Try again in a few minutes; if it keeps happening, tell an administrator."
    )


def event_line(event: KubeObject) -> str:
    """One progress line from a pod event."""
    return f"{event.get('reason', 'Event')}: {event.get('message', '')}".strip()
