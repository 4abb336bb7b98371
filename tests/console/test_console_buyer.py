"""Buyer pages (CONSOLE.md, Signed in: buyer): procurements and their matches, the offer form,
contracts and their signatures, trades with payment, delivery, download, acceptance and dispute.
Every step goes through the services the API uses; what a user would notice is asserted (the page,
its sentence, its status) and the database after a refusal."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from delivery.models import Access
from exchange.db import db, utcnow
from tests.certflow import certify
from tests.console.helpers import Console, text
from tests.deliveryflow import CSV, bought, release, signed_trade
from tests.tradeflow import bid, contract_for, live_fair, sign
from trading.models import Offer, Payment, Procurement


def count(app: Any, model: Any, *where: Any) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def future_date(days: int = 30) -> str:
    return (utcnow() + timedelta(days=days)).date().isoformat()


def procurement_form(**kw: str) -> dict[str, str]:
    return {"title": "采购交通流量数据 Traffic counts wanted", "description": "Arterial roads, every 5 minutes.",
            "category": "transport", "keywords": "交通, traffic", "budget": "12,500.05", "currency": "CNY",
            "deadline": future_date(), "visibility": "public", **kw}


# -- procurements ----------------------------------------------------------------------------------
def test_publish_procurement_stores_the_budget_in_exact_minor_units(app: Any, api: Any) -> None:
    buyer = api.enterprise()
    c = Console(app)
    c.login(buyer.email)
    page = c.get("/console/procurements")
    assert page.status_code == 200 and "New procurement" in text(page)
    r = c.post("/console/procurements/new", procurement_form(budget="12,500.05"))
    assert r.status_code == 303, text(r)
    with app.app_context():
        proc = db.session.execute(select(Procurement).where(Procurement.buyer_org_id == buyer.org_id)).scalar_one()
        assert proc.budget_max_amount == 1_250_005 and type(proc.budget_max_amount) is int
        assert proc.budget_currency == "CNY" and proc.keywords == ["交通", "traffic"]
    listing = text(c.get("/console/procurements"))
    assert "Procurement published." in listing and "CNY 12,500.05" in listing


@pytest.mark.parametrize("budget", ["12.345", "abc", "-5", "0", "1e3", "99999999999999999999"])
def test_a_bad_budget_is_refused_on_the_same_form_with_the_inputs_kept(app: Any, api: Any, budget: str) -> None:
    buyer = api.enterprise()
    c = Console(app)
    c.login(buyer.email)
    r = c.post("/console/procurements/new", procurement_form(budget=budget, title="Keep <this> title"),
               page="/console/procurements/new")
    assert r.status_code == 422
    assert "budget.max_amount" in text(r) and "at most two decimals" in text(r)
    html = r.get_data(as_text=True)
    assert 'value="Keep &lt;this&gt; title"' in html and f'value="{budget}"' in html
    assert count(app, Procurement) == 0


def test_a_past_deadline_is_the_services_refusal_and_creates_nothing(app: Any, api: Any) -> None:
    buyer = api.enterprise()
    c = Console(app)
    c.login(buyer.email)
    r = c.post("/console/procurements/new", procurement_form(deadline="2020-01-01"), page="/console/procurements/new")
    assert r.status_code == 422 and "must be in the future" in text(r)
    assert count(app, Procurement) == 0


def test_matches_show_and_make_an_offer_leads_to_the_offer_form_which_sends_an_offer(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor)
    c = Console(app)
    c.login(buyer.email)
    assert c.post("/console/procurements/new", procurement_form()).status_code == 303
    page = c.get("/console/procurements")
    shown = text(page)
    assert product["title"] in shown and product["certificate_number"] in shown and "CNY 12,500.00" in shown
    assert "within budget" in shown and "Make an offer" in shown
    html = page.get_data(as_text=True)
    form = re.search(r'<form method="get" action="(/catalog/[^"]+/offer)">\s*<input type="hidden" '
                     r'name="procurement_id" value="([^"]+)">', html)
    assert form and form.group(1) == f"/catalog/{product['id']}/offer"
    offer_page = c.get(f"{form.group(1)}?procurement_id={form.group(2)}")
    assert offer_page.status_code == 200
    for name in ("Amount", "Scope", "Duration (days)", "Send offer"):
        assert name in text(offer_page)
    assert "Calls" not in text(offer_page) and "Renew automatically" not in text(offer_page)
    path = form.group(1)
    r = c.post(path, {"amount": "11000.10", "scope": "commercial", "duration_days": "365",
                      "procurement_id": form.group(2)}, page=f"{path}?procurement_id={form.group(2)}")
    assert r.status_code == 303 and r.headers["Location"].endswith("/console/offers")
    with app.app_context():
        offer = db.session.execute(select(Offer)).scalar_one()
        assert (offer.amount, offer.currency, offer.procurement_id) == (1_100_010, "CNY", form.group(2))
        assert offer.terms["delivery_mode"] == product["delivery_mode"] and offer.terms["duration_days"] == 365


def test_the_offer_form_asks_for_calls_or_periods_by_price_model(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    per_call = certify(api, vendor, price={"model": "per_call", "amount": 50, "currency": "CNY", "period": None})
    monthly = certify(api, vendor, price={"model": "subscription", "amount": 90000, "currency": "CNY",
                                          "period": "month"})
    c = Console(app)
    c.login(buyer.email)
    assert "Calls" in text(c.get(f"/catalog/{per_call['id']}/offer"))
    page = text(c.get(f"/catalog/{monthly['id']}/offer"))
    assert "Periods" in page and "Renew automatically" in page
    r = c.post(f"/catalog/{monthly['id']}/offer", {"amount": "900.00", "scope": "commercial", "periods": "3",
                                                   "auto_renew": "on"})
    assert r.status_code == 303, text(r)
    with app.app_context():
        offer = db.session.execute(select(Offer)).scalar_one()
        assert offer.amount == 90_000 and offer.terms["periods"] == 3 and offer.terms["auto_renew"] is True


def test_a_refused_offer_keeps_the_form_and_sends_nothing(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    per_call = certify(api, vendor, price={"model": "per_call", "amount": 50, "currency": "CNY", "period": None})
    c = Console(app)
    c.login(buyer.email)
    r = c.post(f"/catalog/{per_call['id']}/offer", {"amount": "0.50", "scope": "commercial", "duration_days": "30"})
    assert r.status_code == 422 and "terms.calls" in text(r)
    assert 'value="0.50"' in r.get_data(as_text=True)
    assert count(app, Offer) == 0


def test_an_invisible_product_has_no_offer_form(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    from tests.factories import create_product

    draft = create_product(api, vendor)
    c = Console(app)
    c.login(buyer.email)
    for path in (f"/catalog/{draft['id']}/offer", "/catalog/prd_nope/offer"):
        r = c.get(path)
        assert r.status_code == 404 and "Not found" in text(r)


# -- contracts -------------------------------------------------------------------------------------
def test_each_party_signs_and_the_second_signature_makes_the_trade(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    contract = contract_for(api, vendor, buyer)
    path = f"/console/contracts/{contract['id']}"
    b, v = Console(app), Console(app)
    b.login(buyer.email)
    v.login(vendor.email)
    page = b.get(path)
    assert page.status_code == 200 and "Sign contract" in text(page) and contract["digest"] in text(page)
    assert b.post(f"{path}/sign", page=path).status_code == 303
    after = text(b.get(path))
    assert "Contract signed." in after and "Sign contract" not in after and "Online" in after
    assert "Go to the trade" not in after
    assert v.post(f"{path}/sign", page=path).status_code == 303
    signed = api.get(f"contracts/{contract['id']}", buyer).get_json()
    assert signed["status"] == "signed" and signed["trade_id"] and {s["method"] for s in signed["signatures"]} == {
        "platform"}
    html = v.get(path).get_data(as_text=True)
    assert f'href="/console/trades/{signed["trade_id"]}"' in html
    again = b.post(f"{path}/sign", page=path)
    assert again.status_code == 409 and "cannot be signed" in text(again)


def test_an_on_site_signature_names_the_fair_and_the_stall(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    contract = contract_for(api, vendor, buyer)
    fair, _stall = live_fair(api, vendor, code="B-07")
    sign(api, vendor, contract["id"], on_site=True, fair_id=fair["id"], stall_code="B-07")
    c = Console(app)
    c.login(buyer.email)
    page = text(c.get(f"/console/contracts/{contract['id']}"))
    assert f"On site at stall B-07 of {fair['name']}" in page and "Sign contract" in page


def test_the_contract_document_is_escaped(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    contract = contract_for(api, vendor, buyer, title="<script>alert(1)</script> 数据")
    c = Console(app)
    c.login(buyer.email)
    html = c.get(f"/console/contracts/{contract['id']}").get_data(as_text=True)
    assert "<script>alert" not in html
    doc = re.search(r'<pre class="doc"[^>]*>(.*?)</pre>', html, re.S).group(1)
    assert "&lt;script&gt;alert" in doc and "<" not in doc  # shown as the characters typed, as text


def test_strangers_and_the_other_sides_members_get_404(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    stranger, other_vendor = api.enterprise(), api.vendor()
    for who in (stranger, other_vendor):
        c = Console(app)
        c.login(who.email)
        for path in (f"/console/contracts/{trade['contract_id']}", f"/console/trades/{trade['id']}",
                     f"/console/trades/{trade['id']}/files/1"):
            r = c.get(path)
            assert r.status_code == 404 and "Not found" in text(r), path
        token_page = "/console/trades"
        for path in (f"/console/contracts/{trade['contract_id']}/sign", f"/console/trades/{trade['id']}/pay"):
            assert c.post(path, page=token_page).status_code == 404
    assert count(app, Payment) == 0


# -- trades ----------------------------------------------------------------------------------------
def test_pay_by_bank_transfer_then_download_then_accept_delivery(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    path = f"/console/trades/{trade['id']}"
    c = Console(app)
    c.login(buyer.email)
    listing = text(c.get("/console/trades"))
    assert trade["id"] in listing and "Awaiting payment" in listing
    early = c.post(f"{path}/accept", page=path)
    assert early.status_code == 409 and "only a delivered trade can be accepted" in text(early)
    assert api.get(f"trades/{trade['id']}", buyer).get_json()["status"] == "awaiting_payment"
    assert "Pay by bank transfer" in text(c.get(path))
    assert c.post(f"{path}/pay", page=path).status_code == 303
    with app.app_context():
        (payment,) = db.session.execute(select(Payment).where(Payment.trade_id == trade["id"])).scalars()
        assert (payment.provider, payment.status, payment.amount) == ("manual", "pending", trade["amount"])
    second = c.post(f"{path}/pay", page=path)
    assert second.status_code == 409 and count(app, Payment) == 1
    rel = release(api, vendor, trade["product_id"], {"traffic.csv": CSV})
    r = api.post(f"payments/{payment.id}/confirm", api.operator())
    assert r.status_code == 200, r.get_json()
    page = c.get(path)
    shown = text(page)
    assert "Delivered" in shown and "Download traffic.csv" in shown and hashlib.sha256(CSV).hexdigest() in shown
    link = re.search(r'href="(/console/trades/[^"]+/files/\d+)">Download traffic.csv', page.get_data(as_text=True))
    assert link
    before = count(app, Access)
    hop = c.get(link.group(1))
    assert hop.status_code == 303 and "/api/v1/downloads/" in hop.headers["Location"]
    got = c.client.get("/" + hop.headers["Location"].split("://", 1)[-1].split("/", 1)[1])
    body = got.get_data()
    got.close()
    assert got.status_code == 200 and hashlib.sha256(body).hexdigest() == hashlib.sha256(CSV).hexdigest()
    with app.app_context():
        kinds = list(db.session.execute(select(Access.kind).order_by(Access.id)).scalars())[before:]
    assert kinds == ["download_link", "download"]
    assert rel["status"] == "published"
    assert c.post(f"{path}/accept", page=path).status_code == 303
    settled = api.get(f"trades/{trade['id']}", buyer).get_json()
    assert settled["status"] == "settled" and settled["settlement"] == "accepted"
    assert "Settled" in text(c.get(path))


def test_the_seller_sees_the_files_but_no_buyer_buttons(app: Any, api: Any) -> None:
    deal = bought(api)
    c = Console(app)
    c.login(deal["vendor"].email)
    page = text(c.get(f"/console/trades/{deal['trade']['id']}"))
    assert "traffic.csv" in page and "Download traffic.csv" not in page
    assert "Accept delivery" not in page and "Open a dispute" not in page


def test_open_a_dispute_needs_a_reason_and_then_disputes_the_trade(app: Any, api: Any) -> None:
    deal = bought(api)
    trade_id = deal["trade"]["id"]
    path = f"/console/trades/{trade_id}"
    c = Console(app)
    c.login(deal["buyer"].email)
    assert "Open a dispute" in text(c.get(path))
    empty = c.post(f"{path}/dispute", {"reason": ""}, page=path)
    assert empty.status_code == 422 and api.get(f"trades/{trade_id}", deal["buyer"]).get_json()["status"] == "delivered"
    r = c.post(f"{path}/dispute", {"reason": "January is missing <b>entirely</b>."}, page=path)
    assert r.status_code == 303
    assert api.get(f"trades/{trade_id}", deal["buyer"]).get_json()["status"] == "disputed"
    page = c.get(path)
    assert "Dispute opened" in text(page)
    # The entitlement is suspended while the dispute is open: the download is refused, and logged.
    link = re.search(r'href="(/console/trades/[^"]+/files/\d+)"', page.get_data(as_text=True)).group(1)
    refused = c.get(link)
    assert refused.status_code == 403 and "suspended" in text(refused).lower()
    with app.app_context():
        last = db.session.execute(select(Access).order_by(Access.id.desc()).limit(1)).scalar_one()
        assert last.status == "refused"


def test_chinese_pages_are_translated(app: Any, api: Any) -> None:
    vendor, buyer = api.vendor(), api.enterprise()
    offer_product = certify(api, vendor)
    bid(api, buyer, offer_product)
    contract = contract_for(api, vendor, buyer)
    sign(api, buyer, contract["id"])
    c = Console(app, lang="zh-CN")
    c.login(buyer.email)
    assert "新建采购需求" in text(c.get("/console/procurements"))
    assert "发布采购需求" in text(c.get("/console/procurements/new"))
    assert "发送报价" in text(c.get(f"/catalog/{offer_product['id']}/offer"))
    assert "签名" in text(c.get(f"/console/contracts/{contract['id']}"))
    assert "合同与交易" in text(c.get("/console/trades"))


def test_every_text_of_the_buyer_templates_has_a_chinese_translation(app: Any) -> None:
    from pathlib import Path

    from console import i18n

    folder = Path(__file__).resolve().parents[2] / "console" / "templates" / "console" / "buyer"
    texts = {m for f in folder.glob("*.html") for m in re.findall(r'_\(\s*"([^"]+)"', f.read_text())}
    assert texts and not sorted(t for t in texts if t not in i18n.ZH)
