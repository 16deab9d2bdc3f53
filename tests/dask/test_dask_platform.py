"""Dask through the running platform: the hub starts the gateway, the proxy routes /api/dask,
schedulers and workers run as their user in cgroups, the dask_* quotas hold over all of a
user's clusters, dashboards need credentials, and `sciplat down` ends every Dask process."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sqlite3
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dask_gateway import Gateway, GatewayCluster, GatewayWarning, JupyterHubAuth

from tests.conftest import needs_root
from tests.support.kernel import LabKernel
from tests.support.platform import Platform, free_ports, running_platform, wait_for

pytestmark = [
    needs_root,
    pytest.mark.slow,
    # dask_gateway 2026.3's Gateway.__del__ closes a closed gateway again and raises
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
GIB = 2**30


@pytest.fixture(scope="module")
def dask_platform() -> Iterator[Platform]:
    port, api_port, scheduler_port = free_ports(3)
    dask = {"enabled": True, "port": port, "api_port": api_port,
            "scheduler_port": scheduler_port, "idle_timeout": 0}  # fmt: skip
    gc.disable()
    with running_platform(services={"dask": dask}, quotas={"default": {"dask_workers": 3}}) as p:
        wait_for(
            lambda: _get(f"{p.url}/api/dask/api/health").status_code == 200,
            120, 0.3, "the Dask service behind the proxy",
        )  # fmt: skip
        yield p
        for gw in GATEWAYS:
            gw.close()
    gc.enable()


def _get(url: str, **kw: Any) -> httpx.Response:
    try:
        return httpx.get(url, timeout=30, **kw)
    except httpx.TransportError:
        return httpx.Response(599)


#: every Gateway the tests made, closed at the end: dask_gateway 2026.3's Gateway.__del__
#: closes it through the client's event loop, which deadlocks when the cyclic garbage
#: collector runs it on that loop's own thread (seen: a client's close timed out, and the
#: suite hung); so the gateways stay referenced and the cyclic collector is off meanwhile
GATEWAYS: list[Gateway] = []


def gateway(p: Platform, token: str) -> Gateway:
    dask = p.config["services"]["dask"]
    gw = Gateway(
        address=f"{p.url}/api/dask",
        proxy_address=f"gateway://127.0.0.1:{dask['scheduler_port']}",
        auth=JupyterHubAuth(api_token=token),
    )
    GATEWAYS.append(gw)
    return gw


def memory_limit(pid: int) -> int:
    """The memory limit of ``pid``'s cgroup (v1 or v2)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return int(Path(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read_text())
        if controllers == "":
            return int(Path(f"/sys/fs/cgroup{path}/memory.max").read_text())
    raise AssertionError(f"no memory cgroup for {pid}")


def quota_line(p: Platform, user: str, key: str) -> str:
    out = p.sciplat("quota", "show", user).stdout
    return next((line for line in out.splitlines() if line.startswith(key)), "")


def workers_up(cluster: GatewayCluster, n: int) -> None:
    client = cluster.get_client(set_as_default=False)
    try:
        wait_for(lambda: len(client.scheduler_info()["workers"]) == n, 120, 0.5,
                 f"{n} workers")  # fmt: skip
    finally:
        client.close()


def dask_processes(cluster: str) -> list[int]:
    """Processes in the cgroups of ``cluster``'s scheduler and workers."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if f"--dask-{cluster}" in (proc / "cgroup").read_text():
                    found.append(int(proc.name))
    return found


def test_quota_clamps_over_clusters_workers_run_as_the_user_in_cgroups(
    dask_platform: Platform,
) -> None:
    p = dask_platform
    user = p.add_user("dasker")
    token = p.token(user)
    gw = gateway(p, token)
    options = gw.cluster_options()
    options.worker_memory = 0.5
    first = gw.new_cluster(options)
    with pytest.warns(GatewayWarning, match=r"dask_workers quota of 3 \(0 in use"):
        first.scale(5)
    workers_up(first, 3)
    client = first.get_client(set_as_default=False)
    try:
        uids = client.run(os.getuid)
        pids = client.run(os.getpid)
        worker_http = [
            w["services"]["dashboard"] for w in client.scheduler_info()["workers"].values()
        ]
    finally:
        client.close()
    assert set(uids.values()) == {p.uid_of(user)}
    assert {memory_limit(pid) for pid in pids.values()} == {GIB // 2}
    # the workers' own HTTP servers (/metrics, their dashboards) want the cluster's key too
    assert len(worker_http) == 3
    assert all(dashboard_refuses_strangers(f"http://127.0.0.1:{port}") for port in worker_http)

    # the quota is over all the user's clusters: a second one gets no worker
    second = gw.new_cluster(options)
    with pytest.warns(GatewayWarning, match=r"3 in use by your other clusters.*Scaling to 0"):
        second.scale(2)
    with pytest.warns(GatewayWarning, match=r"Adapt maximum of 4 workers would exceed your"):
        second.adapt(minimum=0, maximum=4)
    wait_for(lambda: "3 (100%)" in quota_line(p, user, "dask_workers"), 30, 0.5,
             "quota show to report the workers")  # fmt: skip
    assert "1.5 GiB" in quota_line(p, user, "dask_memory")

    # another user sees none of it and cannot reach it
    other = p.add_user("nosy")
    theirs = gateway(p, p.token(other))
    assert theirs.list_clusters() == []
    with pytest.raises(Exception, match=r"lacks permissions|403|Forbidden"):
        theirs.connect(first.name)

    # dashboards: not without credentials, not on the loopback port without the key
    link = f"{p.url}/api/dask/clusters/{first.name}/status"
    assert _get(link).status_code == 401
    assert _get(link, headers={"Authorization": f"token {p.token(other)}"}).status_code == 404
    assert _get(link, headers={"Authorization": f"token {token}"}).status_code == 200
    db = sqlite3.connect(p.data_dir / "dask.sqlite")
    (address,) = db.execute(
        "SELECT dashboard_address FROM clusters WHERE name = ?", (first.name,)
    ).fetchone()
    db.close()
    assert dashboard_refuses_strangers(address)

    # each cluster's certificate and key are the user's files in their home, removed at stop
    workdirs = [p.home_of(user) / ".sciplat" / "dask" / c.name for c in (first, second)]
    assert all((w / "dask.pem").stat().st_uid == p.uid_of(user) for w in workdirs)
    second.shutdown()
    first.shutdown()
    wait_for(lambda: not any(w.exists() for w in workdirs), 30, 0.2,
             "the clusters' directories to be removed")  # fmt: skip


def test_gateway_needs_no_configuration_in_a_lab(dask_platform: Platform) -> None:
    p = dask_platform
    user = p.add_user("labdask")
    token = p.token(user)
    p.start_lab(user, token)
    kernel = LabKernel(p.url, user, token)
    try:
        # the lab's own token and the DASK_GATEWAY__* settings only: no address, no auth
        out = kernel.run(
            "import os\n"
            "from dask_gateway import Gateway\n"
            "gw = Gateway()\n"
            "cluster = gw.new_cluster()\n"
            "cluster.scale(1)\n"
            "client = cluster.get_client()\n"
            "client.wait_for_workers(1, timeout=120)\n"
            "print('uid', client.submit(os.getuid).result() == os.getuid())\n"
            "client.close()\n"
            "cluster.shutdown()",
            timeout=240,
        )
    finally:
        kernel.close()
    assert "uid True" in out, out


def test_api_rate_answers_429_with_retry_after(dask_platform: Platform) -> None:
    p = dask_platform
    chatty, calm = p.add_user("chatty"), p.add_user("calm")
    p.config["quotas"]["users"] = {chatty: {"api_rate": 3}}
    p.write_config()
    url = f"{p.url}/api/dask/api/v1/clusters/"
    headers = {u: {"Authorization": f"token {p.token(u)}"} for u in (chatty, calm)}
    codes = [_get(url, headers=headers[chatty]).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429], codes
    r = _get(url, headers=headers[chatty])
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.headers
    assert "3 per minute" in r.text, r.text
    assert _get(url, headers=headers[calm]).status_code == 200  # one user's rate is theirs
    p.config["quotas"]["users"] = {}
    p.write_config()


def test_a_zero_quota_refuses_dask_and_a_raised_quota_applies_without_restart(
    dask_platform: Platform,
) -> None:
    p = dask_platform
    user = p.add_user("nodask")
    token = p.token(user)
    p.config["quotas"]["users"] = {user: {"dask_workers": 0}}
    p.write_config()
    gw = gateway(p, token)
    with pytest.raises(Exception, match="dask_workers quota is 0"):
        gw.new_cluster()
    p.config["quotas"]["users"] = {user: {"dask_workers": 1}}
    p.write_config()
    with pytest.raises(Exception, match="environment 'broken' has no Dask"):
        gw.new_cluster(environment="broken")
    cluster = gw.new_cluster(shutdown_on_close=False)
    with pytest.warns(GatewayWarning, match="dask_workers quota of 1"):
        cluster.scale(2)
    workers_up(cluster, 1)
    name = cluster.name
    cluster.close()
    running = dask_processes(name)
    assert len(running) >= 2, "the scheduler and the worker run"

    # a hub restart restarts the Dask service; it adopts the running cluster
    hub = p.pid("hub")
    os.kill(hub, signal.SIGKILL)
    wait_for(lambda: (p.data_dir / "run" / "hub.pid").exists() and p.pid("hub") != hub,
             60, 0.2, "the supervisor to restart the hub")  # fmt: skip
    wait_for(lambda: _get(f"{p.url}/api/dask/api/health").status_code == 200, 60, 0.3,
             "the Dask service to come back")  # fmt: skip
    assert dask_processes(name) == running
    adopted = gw.connect(name, shutdown_on_close=False)
    workers_up(adopted, 1)
    adopted.close()

    p.sciplat("down")
    assert dask_processes(name) == [], "sciplat down leaves no Dask process"


def dashboard_refuses_strangers(address: str) -> bool:
    """True if the HTTP server at ``address`` answers nothing, over TLS or plain HTTP, to a
    client without the cluster's certificate (any HTTP answer, even an error, is a reply)."""
    host, port = address.removeprefix("http://").split(":")
    socket.create_connection((host, int(port)), timeout=10).close()  # something listens
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    for url, verify in (
        (f"https://{host}:{port}/health", ctx),
        (f"http://{host}:{port}/health", True),
    ):
        try:
            httpx.get(url, verify=verify, timeout=10)
        except httpx.HTTPError:
            continue
        return False
    return True
