# The configuration file `sciplat up` hands to JupyterHub (`jupyterhub -f <this file>`).
# Everything comes from the data directory's sciplat.yaml; see sciplat.hub.config.
from sciplat.factory import Factory
from sciplat.hub.config import configure_hub

configure_hub(get_config(), Factory.from_data_dir())  # type: ignore[name-defined]  # noqa: F821
