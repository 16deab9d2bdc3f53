"""OIDC login through the whole platform: browser redirects (followed by an HTTP client) from the
hub to a real OIDC provider on loopback and back, then a lab that runs as the new user."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import needs_root
from tests.support.fake_oidc import FakeOIDCProvider
from tests.support.kernel import LabKernel
from tests.support.platform import Platform, running_platform

pytestmark = [needs_root, pytest.mark.slow]


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOIDCProvider]:
    with FakeOIDCProvider() as p:
        yield p


@pytest.fixture(scope="module")
def oidc_platform(provider: FakeOIDCProvider) -> Iterator[Platform]:
    auth = {
        "provider": "oidc",
        "oidc": {
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
            "scopes": ["openid", "profile", "email", "groups"],
        },
    }
    with running_platform(auth=auth) as p:
        # group names carry the run's prefix, so the host groups they become are the tests'
        astro = p.user("astro")
        p.config["auth"].update(group_mapping={"Astro Team": astro}, allowed_groups=[astro])
        p.down()
        p.up()
        yield p


def browser_login(platform: Platform) -> httpx.Response:
    with httpx.Client(follow_redirects=True, timeout=60) as client:
        return client.get(f"{platform.url}/hub/oauth_login?next=/hub/home")


def test_oidc_login_maps_groups_allocates_ids_and_starts_a_lab(
    oidc_platform: Platform, provider: FakeOIDCProvider
) -> None:
    name = oidc_platform.user("olga")
    other = oidc_platform.user("other")
    provider.login_as(name, groups=["Astro Team", f"{other} Lab"], email=f"{name}@example.org")
    home = browser_login(oidc_platform)
    assert home.status_code == 200, home.text
    assert home.url.path == "/hub/home"
    assert ("GET", "/authorize") in [(m, p.split("?")[0]) for m, p in provider.requests]

    users = {
        u["name"]: u for u in json.loads(oidc_platform.sciplat("user", "list", "--json").stdout)
    }
    assert users[name]["provider"] == "oidc"
    assert set(users[name]["groups"]) == {oidc_platform.user("astro"), f"{other}-lab"}

    token = oidc_platform.token(name)
    oidc_platform.start_lab(name, token)
    kernel = LabKernel(oidc_platform.url, name, token)
    try:
        assert kernel.run("import getpass; print(getpass.getuser())").strip() == name
    finally:
        kernel.close()


def test_oidc_user_outside_allowed_groups_is_refused(
    oidc_platform: Platform, provider: FakeOIDCProvider
) -> None:
    name = oidc_platform.user("oscar")
    provider.login_as(name, groups=[f"{oidc_platform.user('other')} Lab"])
    refused = browser_login(oidc_platform)
    assert refused.status_code == 403
    assert "not a member of any group allowed" in refused.text
    listed = oidc_platform.sciplat("user", "list").stdout
    assert name not in listed
