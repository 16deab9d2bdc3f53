"""Environments on Kubernetes: the registry's tags as the spawn menu, and the prepuller that
keeps the menu's first images on every lab node."""

from __future__ import annotations

import logging

from sciplat.config import EnvironmentConfig
from sciplat.labs.kubernetes.builders.prepuller import build_prepuller
from sciplat.labs.kubernetes.config import KubernetesConfig
from sciplat.labs.kubernetes.models import KubeObject
from sciplat.labs.kubernetes.pull_secrets import PullSecretError, copy_pull_secrets
from sciplat.labs.kubernetes.registry import environments_from_tags
from sciplat.labs.kubernetes.storage.client import KubernetesApi, KubernetesApiError
from sciplat.labs.kubernetes.storage.registry import RegistryClient, RegistryError
from sciplat.labs.menu import EnvironmentMenu, environment_menu

log = logging.getLogger(__name__)


class ImageCatalog:
    """The lab images the registry has, as environments; refreshed on demand."""

    def __init__(
        self, config: KubernetesConfig, registry: RegistryClient, api: KubernetesApi
    ) -> None:
        self.config = config
        self.registry = registry
        self.api = api
        self.environments: list[EnvironmentConfig] = []

    @classmethod
    def from_config(cls, config: KubernetesConfig, api: KubernetesApi) -> ImageCatalog:
        image = config.image
        url = image.registry_url or f"https://{image.registry}"
        return cls(config, RegistryClient(url, image.repository), api)

    async def refresh(self) -> list[EnvironmentConfig]:
        """Read the registry's tags again; on failure the last good list stays.

        Raises:
            RegistryError: the registry could not be read, or has no tag the menu can offer.
        """
        tags = await self.registry.tags()
        environments = environments_from_tags(tags, self.config.image)
        if not environments:
            raise RegistryError(
                f"The repository {self.config.image.repository} has no tag the menu can offer "
                f"({len(tags)} tags; expected names like r28_0_0, w_2026_47, d_2026_11_27 or "
                "exp_name)."
            )
        self.environments = environments
        return environments

    def available(self, environment: EnvironmentConfig) -> bool:
        """Whether ``environment`` is one of the images the registry listed (what the lab
        service asks of local environments: is it on disk)."""
        return any(env.name == environment.name for env in self.environments)

    async def update(self) -> bool:
        """Refresh the menu and the prepuller; what a periodic task of the hub calls. Failures
        are logged and the last good menu and DaemonSet stay; True if both steps worked."""
        try:
            await self.refresh()
            await self.sync_prepuller()
        except (RegistryError, KubernetesApiError, PullSecretError) as err:
            log.warning("lab images not updated: %s", err.message)
            return False
        return True

    def menu(self) -> EnvironmentMenu:
        """The same menu as for local environments (every listed image is available)."""
        return environment_menu(self.environments, lambda env: True)

    def prepull_images(self) -> list[str]:
        """The images of the menu's radio buttons: what most labs start from."""
        return [self.config.image.reference(entry.name) for entry in self.menu().radio]

    async def sync_prepuller(self) -> KubeObject | None:
        """Create or update the prepuller DaemonSet for the current menu (None when the
        prepuller is off or the menu is empty).

        Raises:
            KubernetesApiError: the API refused (e.g. the namespace does not exist).
            PullSecretError: a pull secret to copy into the prepuller's namespace is missing.
        """
        images = self.prepull_images()
        if not self.config.prepuller.enabled or not images:
            return None
        if self.config.prepuller.namespace != self.config.platform_namespace:
            # the DaemonSet's pods name the pull secrets, which must be in their namespace
            await copy_pull_secrets(self.api, self.config, self.config.prepuller.namespace)
        made = await self.api.apply(build_prepuller(self.config, images))
        log.info("prepuller pulls %s", ", ".join(images))
        return made
