"""The console's public catalog pages (CONSOLE.md, Public pages): search with facets and a count, a
product with every listed field and its certificate link, the certificate's verification page, a
fair's stalls with QR codes and a stall's **Sign here on site** for the parties of a pending contract."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from exchange.db import db
from listings.models import Fair
from tests.console.helpers import Console, text
from tests.factories import create_product, listed_product
from tests.tradeflow import contract_for, live_fair, sign


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def links(response: Any) -> dict[str, str]:
    """The page's links by their text (name -> href)."""
    return {re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", m.group(2))).strip(): m.group(1)
            for m in re.finditer(r'<a href="([^"]+)"[^>]*>(.*?)</a>', html(response), flags=re.S)}


def test_catalog_finds_a_listed_product_by_a_chinese_and_by_an_english_word(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = listed_product(api, vendor, title="深圳港集装箱吞吐量 Shenzhen port container throughput",
                             keywords=["港口", "container"])
    other = listed_product(api, vendor, title="广州市实时交通流量 Guangzhou traffic flow", keywords=["交通"])
    c = Console(app)
    for q in ("集装箱", "container", "Shenzhen"):
        page = c.get(f"/catalog?q={q}")
        assert page.status_code == 200, q
        found = links(page)
        assert product["title"] in found and found[product["title"]] == f"/catalog/{product['id']}", q
        assert other["title"] not in found, q
        assert "1 products" in text(page), q
    everything = c.get("/catalog")
    assert {product["title"], other["title"]} <= set(links(everything))
    assert "2 products" in text(everything)
    assert "CNY 12,500.00" in text(everything)  # the price as web.money writes it
    zh = Console(app, lang="zh-CN").get("/catalog?q=港口")
    assert "共 1 个产品" in text(zh) and product["title"] in links(zh)


def test_facets_filter_and_show_the_apis_values_in_words(app: Any, api: Any) -> None:
    vendor = api.vendor()
    road = listed_product(api, vendor, category="transport")
    bank = listed_product(api, vendor, category="finance", delivery_mode="file",
                          price={"model": "subscription", "amount": 99_00, "currency": "CNY", "period": "month"})
    c = Console(app)
    page = c.get("/catalog")
    body = html(page)
    for label in ("Category", "Region", "Delivery mode", "Price model", "Search the catalog"):
        assert re.search(rf'<label for="[^"]+">{label}</label>', body), label
    assert '<option value="privacy_computing">' in body and '<option value="per_call">' in body
    cases = [("category=finance", bank, road), ("category=transport", road, bank),
             ("delivery_mode=file", bank, road), ("price_model=subscription", bank, road),
             ("region=GD&price_model=one_time", road, bank)]
    for query, shown, hidden in cases:
        found = links(c.get(f"/catalog?{query}"))
        assert shown["title"] in found and hidden["title"] not in found, query
    assert "0 products" in text(c.get("/catalog?region=HK"))
    assert '<option value="finance" selected>' in html(c.get("/catalog?category=finance"))


@pytest.mark.parametrize("query", ["category=nonsense", "region=XX", "delivery_mode=telepathy", "page=0",
                                   "page=abc", "price_model=free", "q=" + "x" * 201])
def test_bad_query_args_are_a_422_page_with_the_sentence(app: Any, query: str) -> None:
    page = Console(app).get(f"/catalog?{query}")
    assert page.status_code == 422
    assert "Check these fields" in text(page)
    assert "Search the catalog" in text(page)  # the catalog page itself, not an error page


def test_catalog_pages_with_previous_and_next(app: Any, api: Any) -> None:
    vendor = api.vendor()
    for _ in range(21):
        listed_product(api, vendor)
    c = Console(app)
    first = c.get("/catalog")
    assert "21 products" in text(first) and "Next" in links(first) and "Previous" not in links(first)
    second = c.get(links(first)["Next"].replace("&amp;", "&"))
    assert second.status_code == 200 and "Previous" in links(second) and "Next" not in links(second)
    assert len([t for t in links(second) if t.startswith("广州市实时交通流量数据")]) == 1


def test_product_page_shows_every_listed_field_and_the_certificate_link(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = listed_product(api, vendor)
    page = Console(app).get(f"/catalog/{product['id']}")
    assert page.status_code == 200
    seen = text(page)
    for shown in (product["title"], product["summary"], "Covers arterial roads", "CNY 12,500.00", "One-time",
                  "Commercial use", "365 days", "Resale not allowed", product["scenarios"][0], "API", "Transport",
                  "拥堵指数", "traffic", "Guangdong", "测试机构",
                  "GZ-001", "speed_kmh", "1320", "32.5"):
        assert shown in seen, shown
    number = product["certificate_number"]
    assert links(page)[f"Certificate {number}"] == f"/verify/{number}"
    assert '<th scope="col">road_id</th>' in html(page)
    assert "Make an offer" not in seen  # nobody is signed in


def test_make_an_offer_is_offered_to_a_verified_buyer_only(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = listed_product(api, vendor)
    form = f'<form method="get" action="/catalog/{product["id"]}/offer"'
    buyer, owner, unverified = Console(app), Console(app), Console(app)
    buyer.login(api.enterprise().email)
    owner.login(vendor.email)
    unverified.login(api.enterprise(verified=False).email)
    assert form in html(buyer.get(f"/catalog/{product['id']}"))
    assert "Make an offer" in text(buyer.get(f"/catalog/{product['id']}"))
    for c in (owner, unverified):
        assert form not in html(c.get(f"/catalog/{product['id']}"))


def test_a_draft_of_another_vendor_is_a_404_page_and_visible_to_its_owner(app: Any, api: Any) -> None:
    vendor = api.vendor()
    draft = create_product(api, vendor)
    stranger = Console(app)
    stranger.login(api.vendor().email)
    for c in (Console(app), stranger):
        page = c.get(f"/catalog/{draft['id']}")
        assert page.status_code == 404 and "Not found" in text(page) and draft["title"] not in text(page)
    assert Console(app).get("/catalog/prd_nope").status_code == 404
    owner = Console(app)
    owner.login(vendor.email)
    assert owner.get(f"/catalog/{draft['id']}").status_code == 200


def test_verify_page_shows_the_server_checks_the_qr_code_and_the_browser_check(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = listed_product(api, vendor)
    number = product["certificate_number"]
    page = Console(app).get(f"/verify/{number}")
    assert page.status_code == 200
    seen, body = text(page), html(page)
    for shown in (number, product["title"], "Valid", "Signature valid", "Digest matches", "测试机构"):
        assert shown in seen, shown
    assert 'class="status-valid"' in body
    assert re.search(r'<img class="qr" src="data:image/svg\+xml[^"]+" alt="QR code of this page">', body)
    assert '<script src="/console/static/console/jcs.js" defer></script>' in body
    assert '<script src="/console/static/console/verify.js" defer></script>' in body
    assert 'role="status"' in body and 'data-verified-text="Verified in your browser"' in body
    assert 'data-jwks-url="/.well-known/jwks.json"' in body
    assert "<script>" not in body  # nothing inline: CSP script-src 'self'
    payload = re.search(r'<script type="application/json" id="certificate-payload">(.*?)</script>', body, re.S)
    import json

    cert = api.get(f"certificates/{number}").get_json()
    assert json.loads(payload.group(1)) == {k: cert[k] for k in (
        "number", "product_id", "product_version", "vendor_org_id", "issued_at", "expires_at", "digest", "key_id")}
    zh = Console(app, lang="zh-CN").get(f"/verify/{number}")
    assert "签名有效" in text(zh) and 'data-verified-text="已在您的浏览器中验证"' in html(zh)
    assert Console(app).get("/verify/DFX-1999-000000").status_code == 404


def test_the_signed_payload_and_the_digested_body_are_what_the_server_hashes_and_signs(app: Any, api: Any) -> None:
    """What verify.js checks, checked here with the Python libraries: the embedded JSON is exactly the
    bytes the exchange signed and the revision its digest covers."""
    import base64
    import hashlib
    import json

    import rfc8785
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    vendor = api.vendor()
    number = listed_product(api, vendor)["certificate_number"]
    body = html(Console(app).get(f"/verify/{number}"))

    def embedded(name: str) -> Any:
        found = re.search(rf'<script type="application/json" id="certificate-{name}">(.*?)</script>', body, re.S)
        return json.loads(found.group(1))

    payload, sig, digested = embedded("payload"), embedded("signature"), embedded("digested")
    assert hashlib.sha256(rfc8785.dumps(digested)).hexdigest() == payload["digest"]
    jwk = next(k for k in api.get("/.well-known/jwks.json").get_json()["keys"] if k["kid"] == sig["key_id"])
    key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    key.verify(base64.b64decode(sig["signature"]), rfc8785.dumps(payload))  # raises if not


@pytest.mark.parametrize("action, word", [("suspend", "suspended"), ("revoke", "revoked")])
def test_a_suspended_or_revoked_certificate_says_so_in_words_and_colour(app: Any, api: Any, action: str,
                                                                        word: str) -> None:
    vendor = api.vendor()
    number = listed_product(api, vendor)["certificate_number"]
    r = api.post(f"certificates/{number}/{action}", api.operator(), json={"reason": "data source disputed"})
    assert r.status_code == 200, r.get_json()
    page = Console(app).get(f"/verify/{number}")
    assert page.status_code == 200
    assert f'<span class="status-{word}">{word.title()}</span>' in html(page)
    assert "This certificate is not valid" in text(page) and "data source disputed" in text(page)
    zh = {"suspended": "已暂停", "revoked": "已撤销"}[word]
    assert zh in text(Console(app, lang="zh-CN").get(f"/verify/{number}"))


def test_fair_page_lists_stalls_with_vendors_and_qr_codes_and_the_stall_its_products(app: Any, api: Any) -> None:
    vendor = api.vendor()
    product = listed_product(api, vendor)
    fair, _stall = live_fair(api, vendor, [product["id"]], code="B-07")
    c = Console(app)
    page = c.get(f"/fairs/{fair['id']}")
    assert page.status_code == 200
    seen, body = text(page), html(page)
    assert fair["name"] in seen and "琶洲 Pazhou" in seen and "live" in seen and "测试机构" in seen
    stall_url = f"/fairs/{fair['id']}/stalls/B-07"
    assert links(page)["Open stall B-07"] == stall_url
    assert re.search(r'<img class="qr" src="data:image/svg\+xml[^"]+" alt="QR code of stall B-07">', body)
    page = c.get(stall_url)
    assert page.status_code == 200
    assert links(page)[product["title"]] == f"/catalog/{product['id']}"
    assert "Sign here on site" not in text(page)  # nobody is signed in
    assert c.get(f"/fairs/{fair['id']}/stalls/Z-99").status_code == 404
    assert c.get("/fairs/fair_nope").status_code == 404


def _pending_at_stall(app: Any, api: Any) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    vendor, buyer = api.vendor(), api.enterprise()
    contract = contract_for(api, vendor, buyer)
    fair, _stall = live_fair(api, vendor, [contract["product_id"]], code="A-01")
    return vendor, buyer, contract, fair


def _counter(app: Any, fair_id: str) -> int:
    with app.app_context():
        return db.session.get(Fair, fair_id).contracts_signed_on_site


def test_sign_here_on_site_signs_a_pending_contract_and_the_fair_counts_it(app: Any, api: Any) -> None:
    vendor, buyer, contract, fair = _pending_at_stall(app, api)
    stall_url = f"/fairs/{fair['id']}/stalls/A-01"
    c = Console(app)
    c.login(buyer.email)
    page = c.get(stall_url)
    action = f"{stall_url}/contracts/{contract['id']}/sign"
    assert contract["number"] in text(page) and f'action="{action}"' in html(page)
    assert "Sign here on site" in text(page)
    r = c.post(action, page=stall_url)
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/console/contracts/{contract['id']}")
    shown = api.get(f"contracts/{contract['id']}", buyer).get_json()
    mine = [s for s in shown["signatures"] if s["org_id"] == buyer.org_id]
    assert len(mine) == 1 and mine[0]["on_site"] and mine[0]["fair_id"] == fair["id"]
    assert mine[0]["stall_code"] == "A-01" and shown["status"] == "pending_signatures"
    assert _counter(app, fair["id"]) == 0
    assert contract["number"] not in text(c.get(stall_url))  # signed by this side: nothing more to sign here
    sign(api, vendor, contract["id"])  # the other side signs through the API
    assert api.get(f"contracts/{contract['id']}", buyer).get_json()["status"] == "signed"
    assert _counter(app, fair["id"]) == 1


def test_sign_here_on_site_is_refused_when_the_fair_is_not_live_and_nothing_changes(app: Any, api: Any) -> None:
    _vendor, buyer, contract, fair = _pending_at_stall(app, api)
    stall_url = f"/fairs/{fair['id']}/stalls/A-01"
    c = Console(app)
    c.login(buyer.email)
    token_page = stall_url
    with app.app_context():
        db.session.get(Fair, fair["id"]).ends_at = db.session.get(Fair, fair["id"]).starts_at + timedelta(minutes=1)
        db.session.commit()
    page = c.get(stall_url)
    assert "Sign here on site" not in text(page)
    r = c.post(f"{stall_url}/contracts/{contract['id']}/sign", page=token_page)
    assert r.status_code == 422
    assert "the fair is not live now" in text(r) and "Stall A-01" in text(r)
    assert api.get(f"contracts/{contract['id']}", buyer).get_json()["signatures"] == []


def test_sign_here_on_site_is_refused_to_who_is_not_a_party_and_nothing_changes(app: Any, api: Any) -> None:
    _vendor, buyer, contract, fair = _pending_at_stall(app, api)
    stall_url = f"/fairs/{fair['id']}/stalls/A-01"
    other = Console(app)
    other.login(api.enterprise().email)
    page = other.get(stall_url)
    assert "Sign here on site" not in text(page) and contract["number"] not in text(page)
    r = other.post(f"{stall_url}/contracts/{contract['id']}/sign", page=stall_url)
    assert r.status_code == 404 and "Stall A-01" in text(r)
    anonymous = Console(app)
    r = anonymous.post(f"{stall_url}/contracts/{contract['id']}/sign", page="/login")
    assert r.status_code == 303 and "/login" in r.headers["Location"]
    assert api.get(f"contracts/{contract['id']}", buyer).get_json()["signatures"] == []
    assert _counter(app, fair["id"]) == 0


def test_every_text_of_the_catalog_templates_has_a_chinese_translation(app: Any) -> None:
    from pathlib import Path

    from console import i18n
    from console.catalog import WORDS

    folder = Path(__file__).resolve().parents[2] / "console" / "templates" / "console" / "catalog"
    texts = set()
    for template in folder.glob("*.html"):
        texts |= set(re.findall(r"""_\(\s*(?:"([^"]+)"|'([^']+)')""", template.read_text()))
    wanted = {a or b for a, b in texts} | set(WORDS.values())
    assert len(wanted) > 60
    assert sorted(t for t in wanted if t not in i18n.ZH) == []


def test_user_text_is_escaped_on_the_product_and_verify_pages(app: Any, api: Any) -> None:
    vendor = api.vendor()
    evil = '</script><script>alert(1)</script><img src=x onerror="alert(2)">'
    product = listed_product(api, vendor, title=f"XSS {evil}", sample={"columns": ["c<b>"], "rows": [[evil]]})
    c = Console(app)
    for path in (f"/catalog/{product['id']}", f"/verify/{product['certificate_number']}", "/catalog?q=XSS"):
        page = c.get(path)
        assert page.status_code == 200, path
        assert "<script>alert(1)" not in html(page) and "<img src=x" not in html(page), path
    assert evil in text(c.get(f"/catalog/{product['id']}"))  # shown as text


def test_an_expired_certificate_says_so(app: Any, api: Any) -> None:
    from certification.models import Certificate

    vendor = api.vendor()
    number = listed_product(api, vendor)["certificate_number"]
    with app.app_context():
        cert = db.session.get(Certificate, number)
        cert.issued_at -= timedelta(days=2)
        cert.expires_at = cert.issued_at + timedelta(days=1)
        db.session.commit()
    page = Console(app).get(f"/verify/{number}")
    assert page.status_code == 200
    assert '<span class="status-expired">Expired</span>' in html(page)
    assert "This certificate is not valid" in text(page)
    assert "Signature invalid" in text(page)  # expires_at is signed: the stored row no longer matches it
