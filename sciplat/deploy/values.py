"""The Helm chart's values: ``config`` is the platform's one config document (``sciplat.yaml``,
:class:`sciplat.config.Config`), every other key is about Kubernetes objects only.

``deploy/helm/sciplat/values.schema.json`` is generated from :class:`ChartValues`
(:mod:`sciplat.deploy.schema`), so Helm rejects a value this model rejects. Chart-only keys are
camelCase, as in Kubernetes objects and most charts; the config document keeps its own names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from sciplat.config import Config
from sciplat.configbase import Section

#: Kubernetes quantities: CPU as cores or millicores (``2``, ``0.5``, ``500m``), memory and
#: storage with a binary or decimal suffix or an exponent (``4Gi``, ``512M``, ``1e9``).
CpuQuantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?m?$")] | float
MemoryQuantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[kmun]|e[0-9]+)?$")]
#: A DNS-1123 subdomain: what Kubernetes accepts as the name of a Secret.
ObjectName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]


class Image(Section):
    """A container image."""

    repository: str = Field(description="Image name without the tag.", min_length=1)
    tag: str = Field(description="Tag (or @sha256:... digest).", min_length=1)
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = Field(
        "IfNotPresent", description="When the kubelet pulls it."
    )


class Amounts(Section):
    """CPU and memory."""

    cpu: CpuQuantity = Field(description="CPU (cores or millicores).", examples=["500m"])
    memory: MemoryQuantity = Field(description="Memory.", examples=["1Gi"])


class Resources(Section):
    """Requests and limits of a container; both are required (every pod is accounted)."""

    requests: Amounts
    limits: Amounts


class Component(Section):
    """Placement and resources of one Deployment."""

    image: Image
    resources: Resources
    nodeSelector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the pods must match."
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Taints the pods tolerate (Kubernetes syntax)."
    )


class SecretKey(Section):
    """One key of an existing Secret."""

    name: ObjectName = Field(description="Secret name (in the release's namespace).")
    key: str = Field(description="Key in the Secret.", min_length=1)


class Database(Section):
    """The hub's state: PostgreSQL, its SQLAlchemy URL (with the password) in a Secret."""

    urlSecret: SecretKey = Field(
        description=(
            "Secret key holding e.g. postgresql+psycopg://sciplat:PASSWORD@db:5432/sciplat; "
            "used for hub.state_url and, unless hubUrlSecret is set, hub.hub_db_url."
        )
    )
    hubUrlSecret: SecretKey | None = Field(
        None, description="A separate database for JupyterHub's own tables."
    )


class Hub(Component):
    """The hub Deployment (always one replica: JupyterHub keeps state in memory). Its ports, and
    the proxy's and TAP's, are the config document's (``config.hub``, ``config.services.tap``)."""

    database: Database


class ProxyService(Section):
    """The Service in front of the proxy's public port."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: int = Field(80, ge=1, le=65535, description="Service port.")


class Proxy(Component):
    """configurable-http-proxy (one replica: routes live in its memory)."""

    service: ProxyService = Field(default_factory=ProxyService)


class Storage(Section):
    """A PersistentVolumeClaim."""

    size: MemoryQuantity = Field(description="Requested size.", examples=["20Gi"])
    storageClassName: str = Field("", description="Storage class; empty: the cluster's default.")


class Tap(Component):
    """The TAP service's Deployment; it runs when config.services.tap.enabled is true."""

    storage: Storage = Field(description="Volume for catalogue files (DuckDB).")


class Jobs(Component):
    """The notebook jobs service's Deployment; it runs when config.services.jobs.enabled is
    true, with the hub's service account (jobs start through the lab backend, as labs do)."""

    storage: Storage = Field(description="Volume for job records (jobs.sqlite).")


class IngressTls(Section):
    """TLS of the Ingress."""

    secretName: str = Field("", description="Secret with the certificate; empty: no TLS.")


class Ingress(Section):
    """One Ingress: the TAP and jobs prefixes to their services, everything else to the proxy."""

    enabled: bool = False
    className: str = Field("", description="IngressClass; empty: the cluster's default.")
    host: str = Field("", description="Host name; empty: any.", examples=["sciplat.example.org"])
    annotations: dict[str, str] = Field(default_factory=dict)
    tls: IngressTls = Field(default_factory=IngressTls)


class ServiceAccount(Section):
    """The hub's ServiceAccount."""

    create: bool = True
    name: str = Field("", description="Name; empty: <release>-hub.")
    annotations: dict[str, str] = Field(default_factory=dict)


class Rbac(Section):
    """The ClusterRole the hub needs to manage labs (one namespace per user), and the Role for
    the prepuller DaemonSet the hub keeps (config.kubernetes.prepuller)."""

    create: bool = True


class ChartValues(Section):
    """Everything ``values.yaml`` may hold."""

    config: Config = Field(description="The platform's config document (sciplat.yaml).")
    hub: Hub
    proxy: Proxy
    tap: Tap
    jobs: Jobs
    ingress: Ingress = Field(default_factory=Ingress)
    serviceAccount: ServiceAccount = Field(default_factory=ServiceAccount)
    rbac: Rbac = Field(default_factory=Rbac)
    global_: dict[str, Any] = Field(
        default_factory=dict,
        alias="global",
        description="Helm's values shared with subcharts (unused by this chart).",
    )
