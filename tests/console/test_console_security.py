"""The console's security properties as classes over every console route (the app's url_map), so each
page merged later is covered without being listed: CSRF on every POST (missing or forged: 400, nothing
changes), operator pages invisible (404) to a vendor, CSP and no-store on every HTML page, the session
cookie's flags, no inline script/style/handler in any template, and /login's `next` never leaves the site."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import url_for
from werkzeug.routing import Rule

from tests.console.helpers import Console
from tests.factories import PASSWORD
from tests.security.test_authorize_before_body import _digest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "console" / "templates"
DUMMY = "00000000-0000-4000-8000-000000000000"
OPERATOR_PAGES = re.compile(r"^/console/(queue|certifications|ledger)\b")


def console_rules(app, method: str) -> list[Rule]:
    return [r for r in app.url_map.iter_rules()
            if r.endpoint.startswith("console.") and r.endpoint != "console.static" and method in r.methods]


def path_of(rule: Rule) -> str:
    """The rule's path with every variable filled by an id that names nothing."""
    return re.sub(r"<(?:[^:<>]+:)?[^<>]+>", DUMMY, rule.rule)


def test_the_sweeps_see_the_console(app):
    assert {r.rule for r in console_rules(app, "POST")} >= {"/login", "/logout"}
    assert {r.rule for r in console_rules(app, "GET")} >= {"/login", "/console/queue", "/console/ledger"}


@pytest.mark.parametrize("forged", [False, True], ids=["missing", "forged"])
def test_every_console_post_without_a_valid_csrf_token_is_400_and_changes_nothing(app, api, forged):
    vendor = api.vendor()
    console = Console(app)
    console.login(vendor.email)
    rules = console_rules(app, "POST")
    before = _digest(app)
    for rule in rules:
        data = {"csrf_token": "forged-" + secrets.token_hex(16)} if forged else {}
        r = console.client.post(path_of(rule), data={**data, "email": vendor.email, "password": "x" * 12},
                                headers={"Accept": "text/html"})
        assert r.status_code == 400, (rule.rule, r.status_code, r.get_data(as_text=True)[:500])
        assert _digest(app) == before, f"POST {rule.rule} without a valid CSRF token changed the database"
    # The refused /logout did not end the session either.
    assert console.get("/console/products").status_code != 303, "a POST without a valid token signed the user out"


def test_a_vendor_gets_404_on_every_operator_page(app, api):
    vendor = api.vendor()
    console = Console(app)
    console.login(vendor.email)
    pages = [r for r in console_rules(app, "GET") if OPERATOR_PAGES.match(r.rule)]
    assert pages, "no operator page found in the url_map"
    for rule in pages:
        r = console.get(path_of(rule))
        assert r.status_code == 404, (rule.rule, r.status_code)


@pytest.mark.parametrize("signed_in", [False, True], ids=["public", "vendor"])
def test_every_html_page_has_the_csp_and_no_store(app, api, signed_in):
    console = Console(app)
    if signed_in:
        console.login(api.vendor().email)
    seen = 0
    for rule in console_rules(app, "GET"):
        r = console.get(path_of(rule))
        if r.mimetype != "text/html":
            continue
        seen += 1
        csp = r.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, (rule.rule, csp)
        assert r.headers.get("Cache-Control") == "no-store", (rule.rule, r.headers.get("Cache-Control"))
    assert seen


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("datafair_session=")]
    assert cookies, response.headers.getlist("Set-Cookie")
    return cookies[-1]


def test_the_session_cookie_is_httponly_and_lax(app, api):
    cookie = _session_cookie(Console(app).login(api.vendor().email))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_session_cookie_is_secure_in_production(app, api, make_app):
    email = api.vendor().email
    prod = make_app(DATAFAIR_ENV="production", SECRET_KEY=secrets.token_urlsafe(48))
    cookie = _session_cookie(Console(prod).login(email))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# A data block (`type="application/json"`, filled with Jinja's `tojson`, which escapes <, >, & and ')
# is never executed: the certificate page hands its signed fields to verify.js that way.
INLINE_SCRIPT = re.compile(r'<script\b(?![^>]*\b(?:src=|type="application/json"))[^>]*>\s*\S', re.I)
STYLE_ATTR = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
HANDLER_ATTR = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
STYLE_TAG = re.compile(r"<style\b", re.I)


@pytest.mark.parametrize("template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html")))
def test_no_template_has_inline_script_style_or_handlers(template):
    html = (TEMPLATES / template).read_text(encoding="utf-8")
    for name, pattern in [("inline <script>", INLINE_SCRIPT), ("style= attribute", STYLE_ATTR),
                          ("on…= handler", HANDLER_ATTR), ("<style> element", STYLE_TAG)]:
        found = pattern.search(html)
        assert not found, f"{template}: {name}: {found.group(0)[:80]!r}"


@pytest.mark.parametrize("target", ["//evil.test", "https://evil.test", "/\\evil.test", "http:evil.test",
                                    "\\\\evil.test", " //evil.test", "javascript:alert(1)"])
def test_login_next_never_leaves_the_site(app, api, target):
    vendor = api.vendor()
    console = Console(app)
    r = console.post("/login", {"email": vendor.email, "password": PASSWORD, "next": target},
                     page="/login")
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    location = urlsplit(r.headers["Location"])
    with app.test_request_context():
        home = url_for("console.home")
    assert location.netloc in ("", "localhost") and location.path == home and "evil" not in r.headers["Location"], (
        target, r.headers["Location"])
