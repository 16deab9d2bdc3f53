"""Image pull secrets: read once from the platform's namespace, copied (create or update) into
the namespace whose pods pull the lab image."""

from __future__ import annotations

from sciplat.errors import LabError
from sciplat.labs.kubernetes.builders.secrets import build_pull_secret
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.storage.client import KubernetesApi


class PullSecretError(LabError):
    """A configured pull secret is missing or is not registry credentials."""

    code = "kubernetes_pull_secret"


async def copy_pull_secrets(
    api: KubernetesApi, config: KubernetesConfig, namespace: str, user: str | None = None
) -> list[str]:
    """Copy every ``image.pull_secrets`` Secret from ``platform_namespace`` into
    ``namespace`` (labelled with ``user``'s labels when given); returns their names.
    Idempotent: a copy already there is replaced, so a rotated secret reaches the next lab.

    Raises:
        PullSecretError: a secret is missing or of the wrong type (the message says what the
            administrator must do).
        KubernetesApiError: the API refused or did not answer.
    """
    for name in config.image.pull_secrets:
        source = await api.read("Secret", config.platform_namespace, name)
        if source is None:
            raise PullSecretError(
                f"The image pull secret {name} is missing from namespace "
                f"{config.platform_namespace}, so lab images cannot be downloaded. Tell an "
                "administrator (kubernetes.image.pull_secrets names it)."
            )
        try:
            copy = build_pull_secret(source, namespace, user)
        except ValueError as err:
            raise PullSecretError(f"Lab images cannot be downloaded: {err}. Tell an "
                                  "administrator.") from err  # fmt: skip
        await api.apply(copy)
    return list(config.image.pull_secrets)
