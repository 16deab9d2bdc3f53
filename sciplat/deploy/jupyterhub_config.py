# The configuration file the hub container hands to JupyterHub (`jupyterhub -f <this file>`),
# written by `python -m sciplat.deploy.incluster hub`. Everything of `sciplat up`'s hub
# (sciplat.hub.config) applies; sciplat.deploy.hubcluster changes what differs in a cluster.
from sciplat.deploy.hubcluster import configure_cluster_hub
from sciplat.factory import Factory

configure_cluster_hub(get_config(), Factory.from_data_dir())  # type: ignore[name-defined]  # noqa: F821
