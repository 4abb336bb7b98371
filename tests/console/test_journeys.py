"""The console's role journeys in a real browser (issue 22): Debian's Chromium through Playwright, against
a real gunicorn on the test database with the demo data (tests/console/conftest.py `live_server`).

Controls are found by role and accessible name (CONSOLE.md's names; in zh-CN, their translations from
console/i18n.py), never by CSS. Each journey ends by checking what a user would check: the organization
verified, the certificate verified in the browser, the downloaded bytes' sha256, the trade settled, the
ledger valid. Screenshots of every page visited land in test-artifacts/console/ (not committed)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from console.i18n import ZH
from tests.browser import screenshot
from tests.console.conftest import sign_in, watch
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.allow_hosts(["127.0.0.1"]), pytest.mark.slow]
METRO = "广州地铁客流OD数据"  # the demo's file product of the Guangzhou transport vendor (stall A-01)


def call(server: Any, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    """The API of the same server (setup and checks the journey does not show in the browser)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url("/api/v1" + path), data=data, method=method)  # noqa: S310 - http://127.0.0.1
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=20) as response:  # noqa: S310 - http://127.0.0.1
        return json.loads(response.read() or b"null")


def token(server: Any, email: str, password: str) -> str:
    return call(server, "POST", "/auth/token", body={"email": email, "password": password})["access_token"]


def register(server: Any, kind: str, name: str) -> dict[str, str]:
    n = secrets.token_hex(4)
    email = f"{kind}-{n}@journey.test"
    org = call(server, "POST", "/organizations", body={
        "name": f"{name} {n}", "type": kind, "region": "GD", "registration_number": f"91440101JRNY{n.upper()}",
        "admin": {"email": email, "password": PASSWORD, "name": f"{kind} admin {n}"}})
    return {"id": org["id"], "name": org["name"], "email": email}


class Role:
    """One person at one browser: a context of their own (their own session cookie), one page."""

    def __init__(self, chromium: Any, server: Any, email: str, password: str, lang: str, tag: str) -> None:
        self.context = chromium.new_context(locale=lang, viewport={"width": 1200, "height": 900},
                                            accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors = watch(self.page)
        self.server, self.lang, self.tag, self.shots = server, lang, tag, 0
        sign_in(self.page, server.base, email, password)
        self.page.goto(server.url(f"/home?lang={lang}"))  # sign_in uses English; the journey's language from here

    def name(self, english: str) -> str:
        """A control's accessible name in this journey's language."""
        return ZH[english] if self.lang == "zh-CN" else english

    def go(self, path: str) -> Any:
        self.page.goto(self.server.url(path))
        return self.page

    def shot(self, what: str) -> None:
        self.shots += 1
        screenshot(self.page, f"journey-{self.tag}-{self.shots:02d}-{what}")

    def button(self, english: str, within: Any = None) -> Any:
        return (within or self.page).get_by_role("button", name=self.name(english), exact=True)

    def field(self, english: str, within: Any = None, *, exact: bool = True) -> Any:
        return (within or self.page).get_by_label(self.name(english), exact=exact)

    def close(self) -> None:
        assert not self.errors, self.errors
        self.context.close()


def _flash(role: Role) -> str:
    return role.page.get_by_role("status").first.inner_text()


def test_a_vendor_lists_a_product_two_operators_certify_it_and_the_browser_verifies_the_certificate_zh(
        live_server: Any, chromium: Any) -> None:
    """In zh-CN: the operator verifies a new vendor, the vendor registers a product and submits it, the
    operator reviews every stage and a second operator gives the compliance stage its second approval
    (important data: four eyes), and the certificate page says it verified in the browser."""
    server = live_server
    vendor = register(server, "vendor", "前海旅程数据有限公司 Qianhai Journey Data Ltd")
    operator = Role(chromium, server, "operator@datafair.demo", server.demo_password, "zh-CN", "cert-operator")
    queue = operator.go("/console/queue")
    card = queue.get_by_role("article", name=vendor["name"])
    operator.field("Reason", card).fill("营业执照已核验 licence checked")
    operator.shot("queue")
    operator.button("Verify", card).click()
    assert vendor["name"] in _flash(operator)
    assert queue.get_by_role("article", name=vendor["name"]).count() == 0

    seller = Role(chromium, server, vendor["email"], PASSWORD, "zh-CN", "cert-vendor")
    page = seller.go("/console/products")
    page.get_by_role("link", name=seller.name("New product")).click()
    title = f"南沙港区集装箱堆场数据 Nansha yard data {secrets.token_hex(3)}"
    for label, value in [("Title", title), ("Summary", "每日堆场占用 Daily yard occupancy"),
                         ("Description", "堆场传感器 Yard sensors."), ("Keywords", "堆场, yard, 港口"),
                         ("Price", "8,800.00"), ("Licence duration (days)", "365"),
                         ("Scenarios, one per line", "堆场调度 yard planning"),
                         ("Data source description", "自有传感器 own sensors")]:
        seller.field(label).fill(value)
    seller.field("Category").select_option("transport")
    seller.field("Classification").select_option("important")  # four eyes at compliance
    seller.shot("new-product")
    seller.button("Save draft").click()
    product_id = re.search(r"/console/products/(prd_\w+)", page.url).group(1)
    seller.button("Submit for certification").click()
    assert ZH["Submitted for certification."] in _flash(seller)
    seller.shot("submitted")

    queue = operator.go("/console/queue")
    queue.get_by_role("link", name=title).click()
    cert_page = operator.page
    for stage in ("quality", "ownership", "compliance"):
        operator.field("Stage").select_option(stage)
        operator.field("Decision").select_option("approve")
        operator.field("Comment").fill(f"{stage} 已核验")
        operator.button("Submit review").click()
        assert ZH["Review recorded."] in _flash(operator)
    four_eyes = ZH["{n} of {needed} compliance approvals"].format(n=1, needed=2)
    assert four_eyes in cert_page.inner_text("body")
    operator.shot("four-eyes")
    second = Role(chromium, server, "operator2@datafair.demo", server.demo_password, "zh-CN", "cert-operator2")
    second.go(cert_page.url.split("?")[0].replace(server.base, ""))
    second.field("Stage").select_option("compliance")
    second.field("Decision").select_option("approve")
    second.field("Comment").fill("第二人复核 second pair of eyes")
    second.button("Submit review").click()
    assert ZH["{n} of {needed} compliance approvals"].format(n=2, needed=2) in second.page.inner_text("body")
    second.shot("approved")

    product = seller.go(f"/catalog/{product_id}")
    product.get_by_role("link", name=re.compile(r"DFX-")).click()
    verdict = product.get_by_role("status").filter(has_text=re.compile("浏览器"))
    verdict.wait_for()
    assert verdict.inner_text().strip() == ZH["Verified in your browser"]
    seller.shot("certificate")
    for role in (operator, second, seller):
        role.close()


def test_a_deal_from_procurement_to_a_verified_ledger(live_server: Any, chromium: Any) -> None:
    """In English: a buyer posts a procurement and offers on its match, the vendor counters, the buyer
    accepts, the vendor signs in the console and the buyer on site at the vendor's stall, the buyer pays
    by bank transfer, the operator confirms, the buyer downloads the file (its sha256 as shown) and
    accepts the delivery; the operator verifies the ledger."""
    server = live_server
    op_token = token(server, "operator@datafair.demo", server.demo_password)
    org = register(server, "enterprise", "南沙旅程采购有限公司 Nansha Journey Buyer Ltd")
    call(server, "POST", f"/organizations/{org['id']}/verify", op_token, {"reason": "checked"})
    buyer = Role(chromium, server, org["email"], PASSWORD, "en", "deal-buyer")

    page = buyer.go("/console/procurements")
    page.get_by_role("link", name="New procurement").click()
    title = f"采购地铁客流数据 Metro ridership wanted {secrets.token_hex(3)}"
    buyer.field("Title").fill(title)
    buyer.field("Description").fill("用于商圈选址 For retail site selection")
    buyer.field("Category").select_option("transport")
    buyer.field("Keywords").fill("地铁, 客流, metro")
    buyer.field("Budget").fill("40,000")
    buyer.field("Deadline").fill((datetime.now(UTC) + timedelta(days=30)).date().isoformat())
    buyer.shot("procurement")
    buyer.button("Publish procurement").click()
    section = page.get_by_role("region", name=title)
    row = section.get_by_role("row").filter(has_text=METRO)
    buyer.shot("matches")
    buyer.button("Make an offer", row).click()
    buyer.field("Amount", exact=False).fill("36,000.00")  # "Amount (CNY)"
    buyer.field("Duration (days)").fill("365")
    buyer.button("Send offer").click()
    assert "/console/offers" in page.url

    vendor = Role(chromium, server, "vendor@gz-transport.demo", server.demo_password, "en", "deal-vendor")
    offers = vendor.go("/console/offers")
    received = offers.get_by_role("row").filter(has_text=org["name"]).filter(
        has=offers.get_by_role("button", name="Counter", exact=True))
    vendor.field("Amount", received, exact=False).fill("37,000.00")
    vendor.shot("counter")
    vendor.button("Counter", received).click()

    offers = buyer.go("/console/offers")
    counter = offers.get_by_role("row").filter(has_text="37,000.00").filter(
        has=offers.get_by_role("button", name="Accept", exact=True))
    buyer.button("Accept", counter).click()
    contract_path = re.search(r"/console/contracts/\w+", page.url).group(0)
    buyer.shot("contract")

    vendor.go(contract_path)
    vendor.button("Sign contract").click()
    vendor.shot("signed-by-vendor")

    fair = call(server, "GET", "/fairs?phase=live")["items"][0]
    seller_org = call(server, "GET", "/me", token(server, "vendor@gz-transport.demo", server.demo_password))
    stall = next(s for s in call(server, "GET", f"/fairs/{fair['id']}/stalls?per_page=100")["items"]
                 if s["org_id"] == seller_org["organization"]["id"])
    stall_page = buyer.go(f"/fairs/{fair['id']}/stalls/{stall['code']}")
    buyer.shot("stall")
    buyer.button("Sign here on site").click()
    assert contract_path in page.url
    page.get_by_role("link", name="Go to the trade").click()
    trade_path = re.search(r"/console/trades/\w+", page.url).group(0)
    buyer.button("Pay by bank transfer").click()
    buyer.shot("paid")
    assert stall_page is page

    operator = Role(chromium, server, "operator@datafair.demo", server.demo_password, "en", "deal-operator")
    queue = operator.go("/console/queue")
    payment = queue.get_by_role("article").filter(has_text=org["name"])
    operator.shot("payments")
    operator.button("Confirm payment", payment).click()

    trade = buyer.go(trade_path)
    link = trade.get_by_role("link", name=re.compile(r"^Download "))
    shown_sha = trade.get_by_role("row").filter(has=link).get_by_role("cell").nth(1).inner_text().strip()
    with trade.expect_download() as info:
        link.click()
    data = Path(info.value.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == shown_sha and data
    buyer.go(trade_path)
    buyer.button("Accept delivery").click()
    buyer.shot("accepted")
    trade_id = trade_path.rsplit("/", 1)[-1]
    buyer_token = token(server, org["email"], PASSWORD)
    assert call(server, "GET", f"/trades/{trade_id}", buyer_token)["status"] == "settled"

    ledger = operator.go("/console/ledger")
    operator.button("Verify ledger").click()
    assert re.search(r"Ledger valid: \d+ entries", ledger.inner_text("body"))
    operator.shot("ledger")
    for role in (buyer, vendor, operator):
        role.close()
