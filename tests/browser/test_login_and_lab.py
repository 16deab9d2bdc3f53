"""A person's first visit, in a real browser: log in on the hub's page, get a lab, run a cell.

Drives Debian's chromium (never a downloaded one) through Playwright's sync API against a real
platform: hub, proxy and lab are the real processes. Screenshots for humans are left in
``test-artifacts/browser/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.artifacts import CHROMIUM, screenshot
from tests.conftest import needs_root
from tests.support.platform import Platform

#: Login, spawn and the lab's first page load (~10 s here; far more on a busy CI machine).
LAB_TIMEOUT_MS = 120_000
#: Kernel start and a cell's round trip.
KERNEL_TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.browser,
    needs_root,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; "
        "scripts/bootstrap.sh does it)",
    ),
]

CELL_CODE = (
    'import subprocess; print(subprocess.check_output(["id", "-un"], text=True).strip()); '
    "print(6*7)"
)


def log_in(page: Page, platform: Platform, user: str, password: str, shot: str) -> None:
    page.goto(f"{platform.url}/hub/login")
    expect(page.locator("#username_input")).to_be_visible()
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    screenshot(page, shot)
    page.click("#login_submit")


def test_login_spawns_lab_and_runs_a_cell_as_the_user(platform: Platform, page: Page) -> None:
    password = "correct horse battery staple"
    user = platform.add_user("web", password=password)

    log_in(page, platform, user, password, "login-page")

    # The hub sends a freshly logged-in user to the spawn page; the defaults are preselected.
    start = page.locator("#spawn_form [type=submit]")
    expect(start).to_be_visible(timeout=LAB_TIMEOUT_MS)
    screenshot(page, "options-form")
    start.click()
    page.wait_for_url(re.compile(rf"/user/{re.escape(user)}/lab"), timeout=LAB_TIMEOUT_MS)
    output = run_first_cell(page, CELL_CODE)
    # The code ran as the user's own host account, and its whole output is those two lines.
    expect(output).to_have_text(
        re.compile(rf"^\s*{re.escape(user)}\s+42\s*$"), timeout=KERNEL_TIMEOUT_MS
    )
    screenshot(page, "lab-executed-cell")


def run_first_cell(page: Page, code: str) -> Locator:
    """Open a new Python 3 notebook from the launcher, run ``code`` in its first cell, and
    return the cell's output area."""
    card = page.locator('.jp-LauncherCard[data-category="Notebook"]', has_text="Python 3")
    expect(card.first).to_be_visible(timeout=LAB_TIMEOUT_MS)
    card.first.click()
    panel = page.locator(".jp-NotebookPanel").last
    expect(panel.locator(".jp-Notebook")).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
    # Wait for the kernel itself, as the status bar reports it. (The toolbar's execution
    # indicator says "idle" before any kernel exists; a cell run then is silently dropped.)
    kernel_idle = page.locator("#jp-main-statusbar").get_by_text(
        re.compile(r"Python 3 \(ipykernel\) \| Idle")
    )
    expect(kernel_idle).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
    cell = panel.locator(".jp-Notebook .jp-CodeCell").first
    editor = cell.locator(".jp-InputArea-editor .cm-content")
    editor.click()
    # insert_text, not type: no key events, so the editor's auto-closing brackets can't interfere
    page.keyboard.insert_text(code)
    expect(editor).to_have_text(code)
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-OutputArea-output").first).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
    expect(cell.locator(".jp-InputArea-prompt")).to_have_text(re.compile(r"\[1\]"))
    expect(kernel_idle).to_be_visible(timeout=KERNEL_TIMEOUT_MS)
    return cell.locator(".jp-OutputArea")


def test_wrong_password_is_refused_and_starts_no_lab(platform: Platform, page: Page) -> None:
    user = platform.add_user("bad", password="the right one")

    log_in(page, platform, user, "not the right one", "failed-login-filled")

    error = page.locator(".login_error")
    expect(error).to_have_text("Invalid username or password")
    expect(page).to_have_url(re.compile(r"/hub/login"))
    expect(page.locator("#login_submit")).to_be_visible()
    screenshot(page, "failed-login")

    # No session: the hub keeps the browser out of the lab and sends it back to log in.
    cookies = {c["name"] for c in page.context.cookies()}
    assert "jupyterhub-hub-login" not in cookies, cookies
    page.goto(f"{platform.url}/user/{user}/lab")
    page.wait_for_url(re.compile(r"/hub/login"))
    expect(page.locator("#username_input")).to_be_visible()

    # And the hub has no server, running or pending, for this user.
    model = platform.api("GET", f"/users/{user}", platform.token(user)).json()
    assert model["servers"] == {}, model
    assert model["pending"] is None, model
