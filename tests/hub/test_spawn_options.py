"""The spawn options through the real hub: the menu, environments, reset, refused forgeries,
a broken environment's explanation, and the idle culler."""

from __future__ import annotations

import contextlib
import html
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import needs_root
from tests.support.kernel import LabKernel
from tests.support.platform import Platform, random_suffix, running_platform, wait_for

pytestmark = [needs_root, pytest.mark.slow]


@contextlib.contextmanager
def session(platform: Platform, user: str, password: str) -> Iterator[httpx.Client]:
    """A logged-in browser-like client (cookies, XSRF token)."""
    with httpx.Client(base_url=platform.url, timeout=120) as client:
        yield _logged_in(client, user, password)


def _logged_in(client: httpx.Client, user: str, password: str) -> httpx.Client:
    page = client.get("/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf
    r = client.post("/hub/login", data={"username": user, "password": password,
                                         "_xsrf": xsrf.group(1)})  # fmt: skip
    assert r.status_code == 302
    return client


def form_action(page: str) -> str:
    """The spawn form's target (it carries the XSRF token in its query)."""
    found = re.search(r'id="spawn_form"\s+action="([^"]+)"', page)
    assert found
    return html.unescape(found.group(1))


def test_the_form_lists_environments_in_menu_order_and_sizes(platform: Platform) -> None:
    user = platform.add_user("menu", password="menu-password")
    with session(platform, user, "menu-password") as client:
        page = client.get("/hub/spawn").text
    radios = re.findall(r'name="environment" value="([^"]+)"', page)
    assert radios == ["test", "weekly-clone", "__dropdown__"]
    assert re.findall(r'<optgroup label="([^"]+)"', page) == ["experimental"]
    assert '<option value="broken">' in page
    assert "Removed environment" in page and "not installed" in page
    assert 'value="gone"' not in page
    assert re.findall(r'name="size" value="([^"]+)"', page) == ["tiny", "small"]
    assert 'name="reset"' in page


def test_a_chosen_environment_runs_the_kernel(platform: Platform) -> None:
    user = platform.add_user("weekly")
    token = platform.token(user)
    platform.start_lab(user, token, environment="weekly-clone", size="small")
    kernel = LabKernel(platform.url, user, token)
    try:
        prefix = kernel.run("import sys; print(sys.prefix)").strip()
    finally:
        kernel.close()
    env = next(e for e in platform.config["environments"] if e["name"] == "weekly-clone")
    assert prefix == env["path"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"environment": "gone"}, "There is no environment 'gone' you can start"),
        ({"environment": "../../etc/passwd"}, "There is no environment '../../etc/passwd'"),
        ({"size": "huge"}, "The lab size 'huge' is not one you can use"),
        ({"size": "tiny; rm -rf /"}, "is not one you can use"),
        ({"reset": "maybe"}, "reset must be on or off"),
    ],
)
def test_forged_options_are_refused_and_nothing_starts(
    platform: Platform, options: dict[str, str], message: str
) -> None:
    user = platform.add_user("forger" + random_suffix(3))
    token = platform.token(user)
    r = platform.api("POST", f"/users/{user}/server", token, json=options)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    model = platform.api("GET", f"/users/{user}", token).json()
    assert model["servers"] == {}


def test_forged_form_is_refused_on_the_spawn_page(platform: Platform) -> None:
    user = platform.add_user("formforge", password="forge-password")
    with session(platform, user, "forge-password") as client:
        action = form_action(client.get("/hub/spawn").text)
        r = client.post(action, files={"environment": (None, "/bin/sh"), "size": (None, "tiny")})
    assert "There is no environment &#39;/bin/sh&#39;" in r.text or "/bin/sh" in r.text
    assert not Path(f"/sys/fs/cgroup/pids/sciplat-test-{platform.run_id}/{user}").exists()


def test_reset_moves_settings_aside_and_deletes_nothing(platform: Platform) -> None:
    user = platform.add_user("resetter")
    token = platform.token(user)
    platform.start_lab(user, token)
    kernel = LabKernel(platform.url, user, token)
    try:
        kernel.run(
            "import os, pathlib\n"
            "h = pathlib.Path.home()\n"
            "(h / '.jupyter').mkdir(exist_ok=True); (h / '.jupyter' / 'mine.py').write_text('x')\n"
            "(h / '.local' / 'lib').mkdir(parents=True, exist_ok=True)\n"
            "(h / 'notebook.ipynb').write_text('{}')"
        )
    finally:
        kernel.close()
    platform.stop_lab(user, token)
    platform.start_lab(user, token, reset="1")
    kernel = LabKernel(platform.url, user, token)
    try:
        listing = kernel.run(
            "import pathlib\nh = pathlib.Path.home()\n"
            "moved = sorted(p.name for p in h.glob('.user_env.*'))\n"
            "print(len(moved))\n"
            "print((h / moved[0] / '.jupyter' / 'mine.py').read_text())\n"
            "print((h / moved[0] / '.local' / 'lib').is_dir())\n"
            "print((h / 'notebook.ipynb').exists())"
        ).split()
    finally:
        kernel.close()
    assert listing == ["1", "x", "True", "True"]


def test_broken_environment_explains_itself_with_the_log(platform: Platform) -> None:
    user = platform.add_user("broken")
    token = platform.token(user)
    r = platform.api("POST", f"/users/{user}/server", token, json={"environment": "broken"})
    if r.status_code == 202:  # still starting: the failure comes through the progress stream
        wait_for(lambda: not platform.api("GET", f"/users/{user}", token).json()["pending"],
                 60, 0.2)  # fmt: skip
        events = httpx.get(
            f"{platform.url}/hub/api/users/{user}/server/progress",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        ).text
        text = events
    else:
        text = r.text
    assert "Your lab stopped while starting" in text
    assert "ImportError" in text


@pytest.fixture(scope="module")
def culling_platform() -> Iterator[Platform]:
    with running_platform(culling={"idle_timeout": 10, "every": 5}) as p:
        yield p


def test_idle_lab_is_culled_and_its_cgroup_removed(culling_platform: Platform) -> None:
    p = culling_platform
    user = p.add_user("idler")
    token = p.token(user)
    p.start_lab(user, token)
    cgroup = Path(f"/sys/fs/cgroup/pids/sciplat-test-{p.run_id}/{user}")
    assert cgroup.exists()
    wait_for(lambda: not p.api("GET", f"/users/{user}", token).json()["servers"], 90, 0.5,
             "the culler to stop the idle lab")  # fmt: skip
    wait_for(lambda: not cgroup.exists(), 30, 0.2, "the cgroup to go")


def test_a_lab_that_died_is_explained_on_the_next_spawn_page(platform: Platform) -> None:
    user = platform.add_user("crashed", password="crash-password")
    token = platform.token(user)
    platform.start_lab(user, token)
    cgroup = Path(f"/sys/fs/cgroup/pids/sciplat-test-{platform.run_id}/{user}/cgroup.procs")
    for pid in cgroup.read_text().split():
        os.kill(int(pid), signal.SIGKILL)
    wait_for(lambda: not platform.api("GET", f"/users/{user}", token).json()["servers"], 60, 0.5,
             "the hub to notice the lab died")  # fmt: skip
    with session(platform, user, "crash-password") as client:
        page = client.get("/hub/spawn").text
    assert 'id="sciplat-last-stop"' in page
    assert "Your last lab stopped unexpectedly" in page
    # a successful start clears the notice
    platform.start_lab(user, token)
    platform.stop_lab(user, token)
    with session(platform, user, "crash-password") as client:
        assert "sciplat-last-stop" not in client.get("/hub/spawn").text
