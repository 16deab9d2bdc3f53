"""Dask clusters: cluster-ready and scale-to-N-workers latency through sciplat's Dask service
vs a stock dask-gateway-server (``UnsafeLocalBackend``) in the same invocation.

Run from the checkout as root: ``python bench/dask.py [--rounds 3] [--workers 4] [--json FILE]``.

- **sciplat**: the test harness's platform (``tests/support/platform.py``) with
  ``services.dask`` on; the client authenticates with the user's JupyterHub token through
  ``/api/dask``. Scheduler and workers run as the user, each in its own cgroup, through the lab
  launcher (1 core, 0.5 GiB per worker).
- **stock**: ``dask-gateway-server`` with ``UnsafeLocalBackend`` (processes as root, no cgroup,
  no user switch) and its ``SimpleAuthenticator``, the same environment's ``dask scheduler`` /
  ``dask worker`` (the stock default commands no longer exist), the same worker size.
- **ready**: ``Gateway.new_cluster()`` until it returns (the scheduler has reported to the
  gateway). **scale**: ``cluster.scale(N)`` until the client sees N workers.

Rounds alternate sciplat, stock, sciplat, ...; numbers are p50 / max in seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# run as a script, this file's directory comes first on sys.path and its name would shadow
# the `dask` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from dask_gateway import BasicAuth, Gateway, JupyterHubAuth  # noqa: E402

from tests.support.platform import (  # noqa: E402
    free_ports,
    lab_environment,
    running_platform,
    wait_for,
)

STOCK_CONFIG = """
c.DaskGateway.address = "127.0.0.1:{api}"
c.Proxy.address = "127.0.0.1:{http}"
c.Proxy.tcp_address = "127.0.0.1:{tcp}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.LocalClusterConfig.scheduler_cmd = ["{env}/bin/dask", "scheduler"]
c.LocalClusterConfig.worker_cmd = ["{env}/bin/dask", "worker"]
c.LocalClusterConfig.worker_cores = 1
c.LocalClusterConfig.worker_memory = 2**29
c.LocalClusterConfig.idle_timeout = 0
"""


def measure(gw: Gateway, workers: int, options: Any = None) -> tuple[float, float]:
    """(ready, scale) seconds for one cluster, which is shut down afterwards."""
    t0 = time.perf_counter()
    cluster = gw.new_cluster(options) if options is not None else gw.new_cluster()
    ready = time.perf_counter() - t0
    client = cluster.get_client(set_as_default=False)
    try:
        t1 = time.perf_counter()
        cluster.scale(workers)
        client.wait_for_workers(workers, timeout=300)
        scale = time.perf_counter() - t1
    finally:
        client.close()
        cluster.shutdown()
    return ready, scale


def stock_gateway(
    env: Path, workdir: Path
) -> tuple[subprocess.Popen[bytes], Callable[[], Gateway]]:
    api, http, tcp = free_ports(3)
    config = workdir / "dask_gateway_config.py"
    config.write_text(STOCK_CONFIG.format(api=api, http=http, tcp=tcp, env=env))
    proc = subprocess.Popen(
        [sys.executable, "-m", "dask_gateway_server", "-f", str(config)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{http}/api/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 60, 0.2, "the stock gateway")
    return proc, lambda: Gateway(
        f"http://127.0.0.1:{http}", proxy_address=f"gateway://127.0.0.1:{tcp}",
        auth=BasicAuth("bench"),
    )  # fmt: skip


def summary(values: list[float]) -> str:
    return f"p50 {statistics.median(values):6.2f} s   max {max(values):6.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    # dask_gateway 2026.3's Gateway.__del__ can deadlock the client's loop when the cyclic
    # collector runs it on that loop's thread (see tests/dask/test_dask_platform.py)
    gc.disable()
    env = lab_environment()
    results: dict[str, dict[str, list[float]]] = {
        "sciplat": {"ready": [], "scale": []},
        "stock": {"ready": [], "scale": []},
    }
    port, api_port, scheduler_port = free_ports(3)
    dask = {"enabled": True, "port": port, "api_port": api_port,
            "scheduler_port": scheduler_port, "idle_timeout": 0}  # fmt: skip
    with running_platform(services={"dask": dask}) as p, tempfile.TemporaryDirectory() as tmp:
        wait_for(lambda: httpx.get(f"{p.url}/api/dask/api/health").status_code == 200,
                 120, 0.3, "sciplat's gateway")  # fmt: skip
        user = p.add_user("bench")
        ours = Gateway(f"{p.url}/api/dask", proxy_address=f"gateway://127.0.0.1:{scheduler_port}",
                       auth=JupyterHubAuth(api_token=p.token(user)))  # fmt: skip
        options = ours.cluster_options()
        options.worker_memory = 0.5
        proc, stock = stock_gateway(env, Path(tmp))
        theirs = stock()
        try:
            for _ in range(args.rounds):
                for name, gw, opts in (("sciplat", ours, options), ("stock", theirs, None)):
                    ready, scale = measure(gw, args.workers, opts)
                    results[name]["ready"].append(ready)
                    results[name]["scale"].append(scale)
                    print(f"{name:8} ready {ready:6.2f} s   scale to {args.workers} {scale:6.2f} s",
                          flush=True)  # fmt: skip
        finally:
            proc.terminate()
            proc.wait(30)
    for name, r in results.items():
        print(f"{name:8} cluster ready   {summary(r['ready'])}")
        print(f"{name:8} scale to {args.workers:<5}  {summary(r['scale'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
