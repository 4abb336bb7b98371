"""Every console page a role reaches from the navigation, in a real Chromium (marker `browser`): each
form control has an accessible name, Tab reaches every visible button, no console error or CSP
violation, the page renders in zh-CN with Chinese glyphs (a screenshot each, test-artifacts/console/),
and user texts carrying XSS payloads stay text in the DOM. Pages are found by crawling same-origin
links from home and each role's landing page, so the pages merged later are covered without a list."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests.browser import screenshot
from tests.console.conftest import XSS_IMG, sign_in
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.allow_hosts(["127.0.0.1"])]

# One demo user per role (exchange/identity/demo.py); None is the public.
ROLES = {
    "public": None,
    "vendor": "vendor@gz-transport.demo",
    "buyer": "buyer@fs-manufacturing.demo",
    "assessor": "assessor@gd-assess.demo",
    "operator": "operator@datafair.demo",
    # The organizations whose names (shown in the header) and objects carry the XSS payloads.
    "xss_vendor": "vendor_email",
    "xss_buyer": "buyer_email",
}
MAX_PAGES = 25  # per role: keeps the browser part within a few minutes
SKIP = re.compile(r"^/(api/|logout\b|console/static/)|/download|\.(csv|json|zip|pdf|png|svg|txt|parquet)$")
HAN = re.compile(r"[\u4e00-\u9fff]")

NAMED = re.compile(r'^- [\w-]+ "(.+?)"')  # the first line of Chromium's aria snapshot: role "name"
FOCUS_KEY = """() => { const e = document.activeElement; if (!e || e === document.body) return null;
  if (!e.dataset.tabProbe) e.dataset.tabProbe = String(Math.random()); return e.dataset.tabProbe; }"""
BUTTON_KEYS = """els => els.filter(e => e.offsetWidth || e.offsetHeight || e.getClientRects().length)
  .map(e => { if (!e.dataset.tabProbe) e.dataset.tabProbe = String(Math.random()); return e.dataset.tabProbe; })"""


def crawl(page, base: str, starts: list[str]) -> list[str]:
    """Same-origin GET pages reachable by links from `starts`, breadth first, at most MAX_PAGES."""
    seen: list[str] = []
    queue = list(starts)
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen or SKIP.search(path):
            continue
        response = page.goto(base + path)
        if response is None or response.status >= 400 or "text/html" not in response.headers.get("content-type", ""):
            seen.append(path)
            continue
        seen.append(path)
        for href in page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))"):
            parts = urlsplit(urljoin(base + path, href))
            if f"{parts.scheme}://{parts.netloc}" != base:
                continue
            target = parts.path + (f"?{parts.query}" if parts.query and "lang=" not in parts.query else "")
            if target not in seen and target not in queue and not SKIP.search(parts.path):
                queue.append(target)
    return seen


def unnamed_controls(page) -> list[str]:
    """Visible form controls whose accessible name (as Chromium computes it: Playwright's aria snapshot)
    is empty."""
    controls = page.locator("input, select, textarea, button")
    out = []
    for i in range(controls.count()):
        control = controls.nth(i)
        if not control.is_visible():
            continue
        snapshot = control.aria_snapshot()
        if not NAMED.match(snapshot.splitlines()[0] if snapshot else ""):
            html = control.evaluate("e => e.outerHTML.slice(0, 120)")
            out.append(f"no accessible name: {html} ({snapshot.splitlines()[0] if snapshot else 'not in the tree'})")
    return out


def buttons_tab_misses(page) -> tuple[int, int]:
    """(buttons Tab never focuses, visible buttons): Tab pressed from the top of the page until every
    visible button was focused or every focusable element was passed (plus a margin)."""
    buttons = set(page.locator("button, input[type=submit]").evaluate_all(BUTTON_KEYS))
    reached: set[str] = set()
    page.locator("body").focus()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(len(buttons) + page.locator("a[href], input, select, textarea").count() + 5):
        if buttons <= reached:
            break
        page.keyboard.press("Tab")
        key = page.evaluate(FOCUS_KEY)
        if key:
            reached.add(key)
    return len(buttons - reached), len(buttons)


def check_page(page, base: str, path: str, role: str) -> list[str]:
    """The checks of the module docstring on one page; returns the problems found."""
    problems: list[str] = []
    page.errors.clear()
    sep = "&" if "?" in path else "?"
    response = page.goto(f"{base}{path}{sep}lang=zh-CN")
    if response is None or "text/html" not in response.headers.get("content-type", ""):
        return problems
    page.wait_for_load_state("load")
    where = f"{role} {path}"
    if response.status >= 500:
        problems.append(f"{where}: status {response.status}")
    problems.extend(f"{where}: {c}" for c in unnamed_controls(page))
    missed, total = buttons_tab_misses(page)
    if missed:
        problems.append(f"{where}: Tab does not reach {missed} of {total} buttons")
    body = page.locator("body").inner_text()
    if not HAN.search(body):
        problems.append(f"{where}: no Chinese text in zh-CN")
    if page.evaluate("() => typeof window.__xss") != "undefined":
        problems.append(f"{where}: an XSS payload ran")
    if page.locator("img[src=x]").count():
        problems.append(f"{where}: an XSS <img> became an element")
    problems.extend(f"{where}: {e}" for e in page.errors)
    screenshot(page, f"{role}{path}")
    return problems


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_a_role_reaches_is_accessible_chinese_and_escapes_user_text(live_server, browser_page, role):
    page, base = browser_page, live_server.base
    starts = ["/", "/catalog", f"/catalog/{live_server.xss['product']}"]
    if role.startswith("xss_"):
        sign_in(page, base, live_server.xss[ROLES[role]], PASSWORD)
    elif ROLES[role]:
        sign_in(page, base, ROLES[role])
        starts.insert(0, urlsplit(page.url).path)
    pages = crawl(page, base, starts)
    assert pages, "the crawl found no page"
    problems = [p for path in pages for p in check_page(page, base, path, role)]
    assert not problems, "\n".join(problems)
    # Where the product page exists, it shows the payload as text (escaped once, not dropped, not run).
    response = page.goto(f"{base}/catalog/{live_server.xss['product']}?lang=en")
    if response.status == 200:
        assert XSS_IMG in page.locator("body").inner_text(), "the product's title is shown as the text it is"


def test_the_xss_probe_sees_a_payload_that_runs(browser_page):
    """The DOM check above is not vacuous: on a page without escaping (and without CSP) it fires."""
    page = browser_page
    page.set_content(f"<p>{XSS_IMG}</p>")
    page.wait_for_function("() => window.__xss === 1")
    assert page.locator("img[src=x]").count() == 1


def test_the_accessibility_probes_see_what_they_look_for(browser_page):
    """An unlabelled input, an icon-only button and a button out of the Tab order are found."""
    page = browser_page
    page.set_content('<label for=a>Email</label><input id=a><input id=b><button>Go</button>'
                     '<button tabindex="-1">Skipped</button><button><img alt="" src="data:,"></button>'
                     '<input type=hidden name=csrf_token value=1>')
    unnamed = unnamed_controls(page)
    assert len(unnamed) == 2 and 'id="b"' in unnamed[0] and "<button>" in unnamed[1], unnamed
    assert buttons_tab_misses(page) == (1, 3)


def test_the_glyphs_are_chinese_fonts_not_boxes(live_server, browser_page):
    """fonts-noto-cjk is installed: Chromium has a CJK font, and five Chinese characters are drawn at full
    width (tofu boxes or a missing font would not pass both checks)."""
    page = browser_page
    page.goto(f"{live_server.base}/?lang=zh-CN")
    widths = page.evaluate("""() => { const c = document.createElement('canvas').getContext('2d');
      c.font = '32px sans-serif'; return [c.measureText('数据交易所').width, c.measureText('\\u{10FFFF}').width]; }""")
    fonts = page.evaluate("() => document.fonts.check('16px \"Noto Sans CJK SC\"')")
    assert widths[0] > 4 * 20 and fonts, f"Chinese glyphs do not render (widths {widths}, Noto CJK: {fonts})"
    screenshot(page, "home-zh-CN")
