"""Local password login through the real hub: success, the same refusal for a wrong password
and an unknown user, and lockout after repeated failures."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import needs_root
from tests.support.platform import Platform

pytestmark = [needs_root, pytest.mark.slow]


def login(platform: Platform, user: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=platform.url, timeout=30) as client:
        page = client.get("/hub/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf, "the login form carries an XSRF token"
        return client.post(
            "/hub/login?next=/hub/home",
            data={"username": user, "password": password, "_xsrf": xsrf.group(1)},
        )


def test_right_password_logs_in(platform: Platform) -> None:
    user = platform.add_user("ann", password="correct horse")
    r = login(platform, user, "correct horse")
    assert r.status_code == 302
    assert "jupyterhub-session-id" in r.headers.get("set-cookie", "") or r.cookies


def test_wrong_password_and_unknown_user_get_the_same_message(platform: Platform) -> None:
    user = platform.add_user("ben", password="correct horse")
    wrong = login(platform, user, "battery staple")
    unknown = login(platform, platform.user("nobody"), "battery staple")
    for r in (wrong, unknown):
        assert r.status_code == 403
        assert "Invalid username or password" in r.text


def test_repeated_failures_lock_the_account(platform: Platform) -> None:
    user = platform.add_user("cal", password="correct horse")
    for _ in range(3):  # auth.local.max_failures in the test config
        assert login(platform, user, "nope-nope").status_code == 403
    locked = login(platform, user, "correct horse")
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Too many failed logins" in locked.text
