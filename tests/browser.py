"""A real browser for the console's tests: Debian's Chromium driven by Playwright's sync API.

Never downloads a browser: it uses /usr/bin/chromium (`apt-get install chromium fonts-noto-cjk`).
When that file is missing (or Chromium cannot start) the tests using it are skipped with the reason,
unless DATAFAIR_REQUIRE_CHROMIUM=1 (CI), where they fail. Browser tests carry the `browser` marker
and run once, on the PostgreSQL run (tests/conftest.py).

    with chromium() as browser:           # or the `chromium` fixture of tests/console/conftest.py
        page = browser.new_page(locale="zh-CN")
        ...
        screenshot(page, "catalog")       # test-artifacts/console/catalog.png (full page)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "console"


def unavailable(reason: str) -> None:
    """Skip (or, under DATAFAIR_REQUIRE_CHROMIUM=1, fail) a browser test with the reason."""
    if os.environ.get("DATAFAIR_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"Chromium is required (DATAFAIR_REQUIRE_CHROMIUM=1) but {reason}", pytrace=False)
    pytest.skip(f"Chromium unavailable: {reason}")


@contextmanager
def chromium(**launch: Any) -> Iterator[Any]:
    """A headless Chromium (Playwright Browser) from /usr/bin/chromium; closed on exit."""
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install '.[test]')")
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=[*args, *launch.pop("args", [])], **launch)
        except Error as exc:
            unavailable(f"{CHROMIUM} did not start: {str(exc).splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


def artifact_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "page"


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG of `page` as test-artifacts/console/<name>.png (the folder is not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{artifact_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
