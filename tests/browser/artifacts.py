"""Where browser tests leave screenshots for humans: ``test-artifacts/browser/`` at the repo root
(git-ignored)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"


def artifact_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/browser/<name>.png`` and return its path."""
    path = artifact_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
