"""The spawn page as a scientist sees it: the menu, progress, a failure that explains itself, and
the admin page. Screenshots land in test-artifacts/browser/."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.artifacts import CHROMIUM, screenshot
from tests.browser.test_login_and_lab import LAB_TIMEOUT_MS, log_in, run_first_cell
from tests.conftest import needs_root
from tests.support.platform import Platform

pytestmark = [
    pytest.mark.browser,
    needs_root,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def test_menu_choice_progress_and_admin_page(platform: Platform, page: Page) -> None:
    password = "spawn page password"
    user = platform.add_user("chooser", password=password, admin=True)
    log_in(page, platform, user, password, "spawn-login")

    form = page.locator("#spawn_form")
    expect(form).to_be_visible(timeout=LAB_TIMEOUT_MS)
    labels = form.locator("#sciplat-environments label")
    expect(labels.nth(0)).to_contain_text("Test environment")
    expect(labels.nth(0)).to_contain_text("(recommended)")
    expect(labels.nth(1)).to_contain_text("Weekly clone")
    expect(form.locator("#sciplat-environments .unavailable")).to_contain_text("not installed")
    expect(form.locator("input[name=size][value=tiny]")).to_be_checked()
    screenshot(page, "spawn-options")

    form.locator("input[name=environment][value=weekly-clone]").check()
    form.locator("input[name=size][value=small]").check()
    form.locator("[type=submit]").click()
    page.wait_for_url(re.compile(r"/spawn-pending/|/user/"), timeout=LAB_TIMEOUT_MS)
    if "spawn-pending" in page.url:
        expect(page.locator("#progress-log")).to_contain_text("Identity", timeout=LAB_TIMEOUT_MS)
        screenshot(page, "spawn-progress")
    page.wait_for_url(re.compile(rf"/user/{re.escape(user)}/lab"), timeout=LAB_TIMEOUT_MS)
    env = next(e for e in platform.config["environments"] if e["name"] == "weekly-clone")
    output = run_first_cell(page, "import sys; print(sys.prefix)")
    expect(output).to_have_text(re.compile(rf"^\s*{re.escape(env['path'])}\s*$"))
    screenshot(page, "lab-weekly-prefix")

    page.goto(f"{platform.url}/hub/sciplat/admin")
    row = page.locator("#sciplat-labs tbody tr", has_text=user)
    expect(row).to_contain_text("weekly-clone")
    expect(row).to_contain_text("small")
    expect(row).to_contain_text("/ 1024 MiB")
    expect(page.locator("#sciplat-users")).to_contain_text(user)
    screenshot(page, "admin-page")


def test_broken_environment_shows_reason_and_log(platform: Platform, page: Page) -> None:
    password = "broken page password"
    user = platform.add_user("unlucky", password=password)
    log_in(page, platform, user, password, "broken-login")
    form = page.locator("#spawn_form")
    expect(form).to_be_visible(timeout=LAB_TIMEOUT_MS)
    form.locator("input[name=environment][value=__dropdown__]").check()
    form.locator("select[name=environment_dropdown]").select_option("broken")
    form.locator("[type=submit]").click()
    message = page.get_by_text(re.compile("Your lab stopped while starting"))
    expect(message.first).to_be_visible(timeout=LAB_TIMEOUT_MS)
    expect(page.locator("pre.sciplat-log").first).to_contain_text("ImportError")
    screenshot(page, "spawn-error")


def test_non_admin_cannot_open_the_admin_page(platform: Platform, page: Page) -> None:
    password = "not an admin password"
    user = platform.add_user("plain", password=password)
    log_in(page, platform, user, password, "plain-login")
    expect(page.locator("#spawn_form")).to_be_visible(timeout=LAB_TIMEOUT_MS)
    response = page.goto(f"{platform.url}/hub/sciplat/admin")
    assert response is not None
    assert response.status == 403


def test_reset_from_the_form_moves_settings_aside(platform: Platform, page: Page) -> None:
    password = "reset page password"
    user = platform.add_user("tidy", password=password)
    token = platform.token(user)
    platform.start_lab(user, token)
    home = Path(pwd.getpwnam(user).pw_dir)
    entry = pwd.getpwnam(user)
    for name in (".jupyter", ".ipython"):
        (home / name).mkdir(exist_ok=True)
        (home / name / "settings").write_text("old")
        for path in (home / name, home / name / "settings"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    platform.stop_lab(user, token)

    log_in(page, platform, user, password, "reset-login")
    form = page.locator("#spawn_form")
    expect(form).to_be_visible(timeout=LAB_TIMEOUT_MS)
    form.locator("input[name=reset]").check()
    form.locator("[type=submit]").click()
    page.wait_for_url(re.compile(rf"/user/{re.escape(user)}/lab"), timeout=LAB_TIMEOUT_MS)
    output = run_first_cell(
        page,
        "import glob, os; moved = glob.glob(os.path.expanduser('~/.user_env.*')); "
        "print(len(moved), sorted(os.listdir(moved[0])), os.path.exists(os.path.expanduser("
        "'~/.jupyter/settings')))",
    )
    # what the user had (and what the lab itself had made, e.g. .local) moved; nothing left
    expect(output).to_have_text(
        re.compile(r"^\s*1 \['\.ipython', '\.jupyter'(, '[^']+')*\] False\s*$")
    )
