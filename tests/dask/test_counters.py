"""The Dask service's usage reaching `sciplat quota show`, and the labs' client settings."""

from __future__ import annotations

import json
from pathlib import Path

from sciplat.config import VolumesConfig
from sciplat.dask.client_env import client_environment
from sciplat.dask.config import DaskConfig
from sciplat.dask.storage.backend import write_usage
from sciplat.quotas.services.usage import counters_dir, service_counters


def test_published_counters_are_read_per_user(tmp_path: Path) -> None:
    volumes = VolumesConfig(root=tmp_path)
    assert service_counters(volumes, "ada") == {}  # no service wrote any
    usage = {"ada": {"dask_workers": 3, "dask_cores": 3.0, "dask_memory": 3 * 2**29}}
    write_usage(counters_dir(volumes) / "dask.json", usage)
    assert service_counters(volumes, "ada") == usage["ada"]
    assert service_counters(volumes, "bob") == {}
    (counters_dir(volumes) / "broken.json").write_text("{not json")
    (counters_dir(volumes) / "odd.json").write_text(json.dumps({"ada": {"x": "many"}}))
    assert service_counters(volumes, "ada") == usage["ada"]  # damaged files count for nothing


def test_client_settings_name_the_gateway_and_its_scheduler_proxy() -> None:
    env = client_environment(DaskConfig(scheduler_port=9000), "http://127.0.0.1:8000/")
    assert env == {
        "DASK_GATEWAY__ADDRESS": "http://127.0.0.1:8000/api/dask",
        "DASK_GATEWAY__PUBLIC_ADDRESS": "http://127.0.0.1:8000/api/dask",
        "DASK_GATEWAY__PROXY_ADDRESS": "gateway://127.0.0.1:9000",
        "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    }
    external = DaskConfig(scheduler_address="gateway://dask.example.org:8786")
    assert client_environment(external, "https://sp.example.org")[
        "DASK_GATEWAY__PROXY_ADDRESS"
    ] == ("gateway://dask.example.org:8786")
