"""TAP through the running platform: the hub starts the service, the proxy routes /api/tap,
and pyvo queries it with a user's JupyterHub token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvo
import requests

from sciplat.labs.local.storage.processes import start_time
from tests.conftest import needs_root
from tests.support.platform import Platform, free_ports, running_platform, wait_for

pytestmark = [needs_root, pytest.mark.slow]


@pytest.fixture(scope="module")
def tap_platform() -> Iterator[Platform]:
    port = free_ports(1)[0]
    with running_platform(
        services={"tap": {"enabled": True, "port": port, "anonymous": False}}
    ) as p:
        wait_for(
            lambda: httpx.get(f"{p.url}/api/tap/availability", timeout=5).status_code == 200,
            120, 0.5, "the TAP service behind the proxy",
        )  # fmt: skip
        yield p


def tap_service(platform: Platform, token: str) -> pyvo.dal.TAPService:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return pyvo.dal.TAPService(f"{platform.url}/api/tap", session=session)


def test_pyvo_cone_search_with_a_user_token(tap_platform: Platform) -> None:
    p = tap_platform
    user = p.add_user("astronomer")
    service = tap_service(p, p.token(user))
    result = service.run_sync(
        "SELECT TOP 20 hip, ra, dec FROM hipparcos.main "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 101.287, -16.716, 1.0))"
    )
    table = result.to_table()
    assert 0 < len(table) <= 20
    assert 32349 in list(table["hip"])  # Sirius


def test_without_a_token_the_service_refuses(tap_platform: Platform) -> None:
    r = httpx.post(
        f"{tap_platform.url}/api/tap/sync",
        data={"LANG": "ADQL", "QUERY": "SELECT TOP 1 hip FROM hipparcos.main"},
        timeout=30,
    )
    assert r.status_code in (401, 403)


def test_a_bad_query_explains_itself(tap_platform: Platform) -> None:
    p = tap_platform
    service = tap_service(p, p.token(p.add_user("typo")))
    with pytest.raises(pyvo.dal.DALQueryError) as err:
        service.run_sync("SELECT TOP 1 hipp FROM hipparcos.main")
    assert "hipp" in str(err.value)


def test_quotas_throttle_requests_and_cap_rows(tap_platform: Platform) -> None:
    p = tap_platform
    user = p.add_user("hasty")
    token = p.token(user)
    capped = p.add_user("capped")
    p.config["quotas"] = {"users": {user: {"api_rate": 3}, capped: {"query_rows": 5}}}
    p.write_config()
    # the TAP process reads the quotas at its start: the hub restarts it with the hub
    p.sciplat("reload")
    wait_for(
        lambda: httpx.get(f"{p.url}/api/tap/availability", timeout=5).status_code == 200,
        120, 0.5, "the TAP service after the reload",
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    query = {"LANG": "ADQL", "QUERY": "SELECT TOP 1 hip FROM hipparcos.main"}
    codes = []
    for _ in range(5):
        r = httpx.post(f"{p.url}/api/tap/sync", data=query, headers=headers, timeout=30)
        codes.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert "Too many requests to tap" in r.text
            break
    assert codes[:3] == [200, 200, 200] and codes[-1] == 429, codes

    # query_rows caps MAXREC: the result is cut and says so (OVERFLOW), as TAP does for MAXREC
    result = tap_service(p, p.token(capped)).run_sync(
        "SELECT TOP 100 hip FROM hipparcos.main ORDER BY hip", maxrec=50
    )
    assert len(result.to_table()) == 5
    assert result.query_status == "OVERFLOW"


def test_tap_from_a_lab_works_with_the_labs_own_token(tap_platform: Platform) -> None:
    from tests.support.kernel import LabKernel

    p = tap_platform
    user = p.add_user("notebook")
    token = p.token(user)
    p.start_lab(user, token)
    kernel = LabKernel(p.url, user, token)
    try:
        out = kernel.run(
            "import os, urllib.request\n"
            "req = urllib.request.Request("
            f"'{p.url}/api/tap/sync?LANG=ADQL&FORMAT=csv&QUERY=SELECT%20TOP%202%20hip%20FROM%20hipparcos.main',"
            " headers={'Authorization': 'Bearer ' + os.environ['JUPYTERHUB_API_TOKEN']})\n"
            "print(urllib.request.urlopen(req).read().decode().splitlines()[0])"
        )
    finally:
        kernel.close()
    assert out.strip() == '"hip"'  # the CSV header


def test_services_end_with_a_killed_hub_and_come_back(tap_platform: Platform) -> None:
    import os
    import signal

    p = tap_platform
    hub = p.pid("hub")
    children = Path(f"/proc/{hub}/task/{hub}/children").read_text().split()
    services = [int(c) for c in children
                if "sciplat.tap" in Path(f"/proc/{c}/cmdline").read_text()]  # fmt: skip
    assert services, "the hub runs the TAP service"
    os.kill(hub, signal.SIGKILL)
    wait_for(lambda: all(start_time(pid) is None for pid in services), 30, 0.1,
             "the TAP service to end with its hub")  # fmt: skip
    wait_for(lambda: p.pid("hub") != hub and p.ready(), 60, 0.2, "the hub to be restarted")
    wait_for(
        lambda: httpx.get(f"{p.url}/api/tap/availability", timeout=5).status_code == 200,
        120, 0.5, "a new TAP service",
    )  # fmt: skip
