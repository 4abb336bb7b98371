"""Fixtures of the console's browser tests (marker `browser`, run once, on the PostgreSQL run).

- `live_server` (module): a real gunicorn on a free loopback port serving the app on THIS test run's
  database, seeded with the demo data (exchange/identity/demo.py) and with XSS payloads in user texts
  (`live_server.xss`: the ids of the objects carrying them). `live_server.base` is http://127.0.0.1:<port>.
  A module using it must not also use `app`/`api` (they reset the database under the server).
- `chromium` (module): a headless Debian Chromium (tests/browser.py); `browser_page` (function): a fresh
  context + page on it, with `page.errors` (console errors, CSP violations, page errors) collected.
- `sign_in(page, base, email)`: signs in through /login by role and accessible name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium as _chromium
from tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parents[2]
XSS_IMG = "<img src=x onerror=window.__xss=1>"
XSS_SCRIPT = '"><script>window.__xss=1</script>'
XSS = f"{XSS_IMG} {XSS_SCRIPT}"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Tests marked `browser` start Chromium and a gunicorn: run once, on the PostgreSQL run."""
    if BACKEND == "postgres":
        return
    skip = pytest.mark.skip(reason="browser tests run once, on the PostgreSQL run (DATAFAIR_TEST_DB=postgres)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@dataclass
class LiveServer:
    base: str
    log: Path
    demo_password: str  # of the demo users; the XSS organizations' admins use tests.factories.PASSWORD
    xss: dict[str, str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path


def _seed(app: Any) -> dict[str, str]:
    from exchange.db import db
    from exchange.identity import demo
    from tests.factories import ApiHelper, create_product, listed_product
    from tests.world import procurement_body

    with app.app_context():
        demo.seed_all(db.session, app)
        db.session.commit()
        db.session.remove()
    api = ApiHelper(app)
    vendor = api.vendor(name=f"XSS vendor {XSS}")
    listed = listed_product(api, vendor, title=f"XSS product {XSS}", summary=f"summary {XSS}",
                            description=f"description {XSS}", keywords=["xss", XSS_IMG])
    draft = create_product(api, vendor, title=f"XSS draft {XSS}", description=XSS)
    buyer = api.enterprise(name=f"XSS buyer {XSS}")
    r = api.post("procurements", buyer, json=procurement_body(title=f"XSS procurement {XSS}", description=XSS))
    assert r.status_code == 201, r.get_json()
    with app.app_context():
        db.session.remove()
    return {"product": listed["id"], "draft": draft["id"], "procurement": r.get_json()["id"],
            "vendor_org": vendor.org_id, "buyer_org": buyer.org_id,
            "vendor_email": vendor.email, "buyer_email": buyer.email}


@pytest.fixture(scope="module")
def live_server(_session_app: Any, database: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real gunicorn on the test database with the demo data (see the module docstring)."""
    from exchange.identity.demo import DEMO_PASSWORD
    from tests.api.test_ratelimit import gunicorns

    saved = dict(_session_app.config)
    database.reset(_session_app)
    xss = _seed(_session_app)
    tmp = tmp_path_factory.mktemp("live")
    env = {
        "DATAFAIR_ENV": "development",  # http on loopback: the session cookie is not Secure
        "DATAFAIR_ALLOW_PRIVATE_URLS": "1",
        "DATAFAIR_LOGIN_RATE_LIMIT": "1000/minute",
        "DATAFAIR_WRITE_RATE_LIMIT": "10000/minute",
        "DATAFAIR_STORAGE_URL": _session_app.config.get("STORAGE_URL") or f"file://{tmp}/storage",
        "DATAFAIR_SECRET_KEY": os.environ["DATAFAIR_SECRET_KEY"],
    }
    try:
        with gunicorns(database.url, tmp, count=1, **env) as (base,):
            yield LiveServer(base=base, log=tmp / "gunicorn-0.log", demo_password=DEMO_PASSWORD, xss=xss)
    finally:
        _session_app.config.clear()
        _session_app.config.update(saved)
        from exchange.db import db

        with _session_app.app_context():
            db.session.remove()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with _chromium() as browser:
        yield browser



def watch(page: Any) -> list[str]:
    """Collect console errors (CSP violations included) and uncaught page errors into a list."""
    errors: list[str] = []
    def on_console(message: Any) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        # The document's own 4xx status (a "Not found" page) is logged by Chromium: not a page error.
        if message.text.startswith("Failed to load resource") and url.split("?")[0] == page.url.split("?")[0]:
            return
        errors.append(f"console.error: {message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page; `page.errors` lists console errors seen so far."""
    context = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = watch(page)
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page: Any, base: str, email: str, password: str | None = None) -> None:
    """Sign in through /login (English names of CONSOLE.md); the page ends on the landing page."""
    from exchange.identity.demo import DEMO_PASSWORD

    page.goto(f"{base}/login?lang=en")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password or DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, f"sign-in as {email} failed: {page.url}"


