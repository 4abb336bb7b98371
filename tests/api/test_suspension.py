"""Suspension freezes the suspended organization's side of the market (API.md, Identity and access).

Its members log in and read, every write of theirs answers 403; its listed products keep their status
but leave the catalog, search, the fairs' stalls and matching until it is reinstated (a product whose
certificate is suspended stays out); nobody starts anything new with it (offers, counters,
acceptances, signatures, payments: 409 naming the reason, nothing changed); on trades under way the
buyer still accepts a delivery or disputes, operators resolve; payouts to it answer 409.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from exchange.db import db
from exchange.errors import PROBLEM_JSON
from exchange.http import SUSPENSION_EXEMPT
from tests.certflow import certify
from tests.factories import Actor, ApiHelper
from tests.security.matrix import outside_api
from tests.tradeflow import bid, live_fair, sign, terms
from tests.world import procurement_body

SHA = "e" * 64
SAFE = {"GET", "HEAD", "OPTIONS"}


def ok(r: Any, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.get_json())
    return r.get_json()


def price_terms(product: dict[str, Any], amount: int = 1_100_000) -> dict[str, Any]:
    return {"price": {"amount": amount, "currency": product["price"]["currency"]}, "terms": terms(product)}


def quote(api: ApiHelper, vendor: Actor, buyer: Actor, product: dict[str, Any]) -> str:
    body = {"product_id": product["id"], "to_org_id": buyer.org_id, **price_terms(product)}
    return ok(api.post("offers", vendor, json=body), 201)["id"]


def contract(api: ApiHelper, vendor: Actor, buyer: Actor, product: dict[str, Any]) -> str:
    return ok(api.post(f"offers/{bid(api, buyer, product)['id']}/accept", vendor), 201)["id"]


def trade(api: ApiHelper, vendor: Actor, buyer: Actor, product: dict[str, Any]) -> str:
    contract_id = contract(api, vendor, buyer, product)
    sign(api, buyer, contract_id)
    return sign(api, vendor, contract_id)["trade_id"]


def paid(api: ApiHelper, vendor: Actor, buyer: Actor, op: Actor, product: dict[str, Any],
         delivered: bool = False) -> str:
    trade_id = trade(api, vendor, buyer, product)
    payment = ok(api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}), 201)
    ok(api.post(f"payments/{payment['id']}/confirm", op))
    if delivered:
        ok(api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "s3://b/d.csv", "sha256": SHA}))
    return trade_id


@dataclass
class Market:
    api: ApiHelper
    vendor: Actor
    buyer: Actor
    op: Actor
    product: dict[str, Any]


@pytest.fixture
def market(api: ApiHelper) -> Market:
    vendor, buyer, op = api.vendor(), api.enterprise(), api.operator()
    return Market(api, vendor, buyer, op, certify(api, vendor))


def snapshot(api: ApiHelper, op: Actor) -> dict[str, Any]:
    """What a refusal must leave unchanged: every offer, contract and trade as operators see them."""
    def items(path: str) -> list[dict[str, Any]]:
        return sorted(ok(api.get(f"{path}?per_page=100", op))["items"], key=lambda i: i["id"])

    trades = items("trades")
    return {"offers": items("offers"), "contracts": items("contracts"), "trades": trades,
            "payments": {t["id"]: ok(api.get(f"ledger/entries?trade_id={t['id']}", op))["total"] for t in trades}}


# -- the suspended side: log in, read, never write -------------------------------------------------

def _write_routes(app: Any) -> list[tuple[str, str]]:
    """Every write route the kernel refuses to a suspended organization: all but the login routes and
    the views that refuse it themselves, with the reason (the download link: delivery's entitlement
    check, tested in tests/api/test_delivery_files.py)."""
    exempt = app.extensions.get(SUSPENSION_EXEMPT, set())
    assert exempt == {"delivery.create_download"}, exempt
    routes = []
    for rule in app.url_map.iter_rules():
        # The gateway's data plane takes no token, only a buyer's `dfk_` key: what a suspension does to
        # it is the entitlement's verdict at each call (tests/api/test_gateway.py), not the kernel's.
        if (outside_api(rule) or rule.rule.startswith("/api/v1/auth/")
                or rule.endpoint in exempt):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?[^<>]+>", "suspension-probe", rule.rule)
        routes.extend((method, path) for method in sorted(rule.methods - SAFE))
    return sorted(routes)


def test_every_write_of_a_suspended_organizations_member_is_403_and_reads_and_login_still_work(app, api, market):
    vendor = market.vendor
    member = api.member(vendor)
    api.suspend(vendor)
    # "May log in": a fresh login after the suspension works (the suspension revoked the old refresh tokens).
    for actor in (api._actor(vendor.email), api._actor(member.email)):
        assert ok(api.get("me", actor))["organization"]["status"] == "suspended"
        assert ok(api.get(f"products/{market.product['id']}", actor))["status"] == "listed"
        assert ok(api.get("products?mine=true", actor))["total"] == 1
        routes = _write_routes(app)
        assert len(routes) > 40, routes  # the URL map, not a hand-written list
        failures = []
        for method, path in routes:
            r = api.request(method, path, actor, json={})
            if r.status_code != 403 or r.mimetype != PROBLEM_JSON or "suspended" not in r.get_json()["detail"]:
                failures.append(f"{method} {path}: {r.status_code} {r.get_data(as_text=True)[:120]}")
        assert not failures, "\n".join(failures)
        assert api.post("auth/logout", actor).status_code == 204


# -- the counterparty starts nothing new with it ------------------------------------------------------

def test_nothing_new_starts_with_a_suspended_seller_and_everything_does_once_it_is_reinstated(market):
    api, vendor, buyer, op, product = market.api, market.vendor, market.buyer, market.op, market.product
    quote_counter, quote_accept = quote(api, vendor, buyer, product), quote(api, vendor, buyer, product)
    contract_id = contract(api, vendor, buyer, product)
    trade_id = trade(api, vendor, buyer, product)
    api.suspend(vendor)
    # (what the buyer tries, method, path, body, status once the seller is reinstated)
    # (what the buyer tries, path, OpenAPI path, body)
    steps = [
        ("bid", "offers", "offers", {"product_id": product["id"], **price_terms(product)}),
        ("counter", f"offers/{quote_counter}/counter", "offers/{offer_id}/counter", price_terms(product, 1_000_000)),
        ("accept offer", f"offers/{quote_accept}/accept", "offers/{offer_id}/accept", {}),
        ("sign", f"contracts/{contract_id}/signatures", "contracts/{contract_id}/signatures", {}),
        ("pay", f"trades/{trade_id}/payments", "trades/{trade_id}/payments", {"provider": "manual"}),
    ]
    before = snapshot(api, op)
    spec = api.get("openapi.json").get_json()["paths"]
    for what, path, rule, body in steps:
        r = api.post(path, buyer, json=body)
        assert r.status_code == 409, (what, r.get_json())
        assert r.get_json()["detail"].startswith("The seller organization is suspended. "), what
        assert "409" in spec[f"/api/v1/{rule}"]["post"]["responses"], what
    assert snapshot(api, op) == before
    # The product page still shows it (its own status is kept); the catalog does not.
    assert ok(api.get(f"products/{product['id']}"))["status"] == "listed"
    ok(api.post(f"organizations/{vendor.org_id}/reinstate", op, json={"reason": "cleared"}))
    for what, path, _rule, body in steps:
        r = api.post(path, buyer, json=body)
        assert r.status_code == 201, (what, r.get_json())


def test_nothing_new_starts_with_a_suspended_buyer(market):
    api, vendor, buyer, op, product = market.api, market.vendor, market.buyer, market.op, market.product
    bid_counter, bid_accept = bid(api, buyer, product)["id"], bid(api, buyer, product)["id"]
    contract_id = contract(api, vendor, buyer, product)
    api.suspend(buyer)
    steps = [
        ("quote", "POST", "offers", {"product_id": product["id"], "to_org_id": buyer.org_id, **price_terms(product)}),
        ("counter", "POST", f"offers/{bid_counter}/counter", price_terms(product, 1_300_000)),
        ("accept offer", "POST", f"offers/{bid_accept}/accept", {}),
        ("sign", "POST", f"contracts/{contract_id}/signatures", {}),
    ]
    before = snapshot(api, op)
    for what, method, path, body in steps:
        r = api.request(method, path, vendor, json=body)
        assert r.status_code == 409, (what, r.get_json())
        assert r.get_json()["detail"].startswith("The buyer organization is suspended. "), what
    # Inviting it to new demand is starting something new with it too.
    invited = procurement_body(visibility="invited", invited_org_ids=[buyer.org_id])
    r = api.post("procurements", vendor, json=invited)
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["detail"].startswith("The invited organization is suspended. "), r.get_json()
    assert r.get_json()["next_step"] == "an operator must reinstate the invited organization first"
    assert snapshot(api, op) == before
    # Closing what is open is no new step: the vendor still rejects a pending bid.
    assert ok(api.post(f"offers/{bid_counter}/reject", vendor, json={}))["status"] == "rejected"


# -- trades under way: the buyer's protective steps and the operators' stay open -----------------------

def test_trades_under_way_with_a_suspended_seller_protect_the_buyer_and_payouts_wait(market):
    api, vendor, buyer, op, product = market.api, market.vendor, market.buyer, market.op, market.product
    to_accept = paid(api, vendor, buyer, op, product, delivered=True)
    to_dispute = paid(api, vendor, buyer, op, product)
    to_resolve = paid(api, vendor, buyer, op, product, delivered=True)
    ok(api.post(f"trades/{to_resolve}/disputes", buyer, json={"reason": "不符 not as described"}), 201)
    settled = paid(api, vendor, buyer, op, product, delivered=True)
    ok(api.post(f"trades/{settled}/acceptance", buyer))
    payable = {a["owner_id"]: a["balance"] for a in ok(api.get("ledger/accounts?per_page=100", op))["items"]
               if a["purpose"] == "seller_payable"}[vendor.org_id]
    assert payable > 0
    api.suspend(vendor)

    assert ok(api.post(f"trades/{to_accept}/acceptance", buyer))["status"] == "settled"
    assert ok(api.post(f"trades/{to_dispute}/disputes", buyer, json={"reason": "卖方被暂停 seller suspended"}),
              201)["status"] == "open"
    assert ok(api.get(f"trades/{to_dispute}", buyer))["status"] == "disputed"
    resolved = ok(api.post(f"trades/{to_resolve}/resolution", op, json={"refund_amount": 1_250_000}))
    assert resolved["status"] == "refunded" and resolved["refunded_amount"] == 1_250_000

    def balance() -> int:
        return {a["owner_id"]: a["balance"] for a in ok(api.get("ledger/accounts?per_page=100", op))["items"]
                if a["purpose"] == "seller_payable"}[vendor.org_id]

    held = balance()
    assert held > payable  # the accepted delivery settled into its payable
    r = api.post("payouts", op, json={"org_id": vendor.org_id, "currency": "CNY", "amount": 1})
    assert r.status_code == 409, r.get_json()
    assert r.get_json()["detail"].startswith("The payee organization is suspended. "), r.get_json()
    assert balance() == held
    ok(api.post(f"organizations/{vendor.org_id}/reinstate", op, json={"reason": "cleared"}))
    ok(api.post("payouts", op, json={"org_id": vendor.org_id, "currency": "CNY", "amount": held}), 201)
    assert balance() == 0


def test_a_pending_stripe_payout_to_a_suspended_organization_is_not_transferred(app, market):
    api, vendor, buyer, op, product = market.api, market.vendor, market.buyer, market.op, market.product
    ok(api.patch(f"organizations/{vendor.org_id}", op, json={"stripe_account_id": "acct_suspension"}))
    settled = paid(api, vendor, buyer, op, product, delivered=True)
    ok(api.post(f"trades/{settled}/acceptance", buyer))
    payout = ok(api.post("payouts", op, json={"org_id": vendor.org_id, "currency": "CNY", "amount": 1,
                                              "provider": "stripe"}), 201)
    assert payout["status"] == "pending"
    api.suspend(vendor)
    from trading import settlement

    # No Stripe peer runs here: a transfer attempted would fail the test with a connection error.
    with app.app_context():
        assert settlement.send_transfers(db.session) == 0
        db.session.commit()
        status = db.session.execute(text("SELECT status FROM payouts WHERE id = :i"), {"i": payout["id"]}).scalar()
        db.session.rollback()
    assert status == "pending"


# -- the catalog, search, stalls and matching ------------------------------------------------------------

def test_a_suspended_vendors_products_leave_the_catalog_search_stalls_and_matching_and_come_back(market):
    api, vendor, buyer, op = market.api, market.vendor, market.buyer, market.op
    word = "suspensionprobe"
    kept = certify(api, vendor, keywords=[word, "traffic"])
    cert_hold = certify(api, vendor, keywords=[word, "traffic"])
    other = certify(api, api.vendor(), keywords=[word, "traffic"])
    fair, stall = live_fair(api, vendor, [kept["id"], cert_hold["id"]])
    proc = ok(api.post("procurements", buyer, json=procurement_body(keywords=[word, "traffic"])), 201)

    def seen() -> dict[str, set[str]]:
        def ids(path: str, actor: Actor | None = None) -> set[str]:
            return {p["id"] for p in ok(api.get(path, actor))["items"]}

        stalls = ok(api.get(f"fairs/{fair['id']}/stalls"))["items"]
        return {
            "browse": ids("products?per_page=100"),
            "search": ids(f"products?q={word}&per_page=100"),
            "search_zh": ids("products?q=交通&per_page=100"),
            "by_vendor": ids(f"products?vendor_id={vendor.org_id}"),
            "fair_filter": ids(f"products?fair_id={fair['id']}"),
            "stall": set(next(s for s in stalls if s["id"] == stall["id"])["product_ids"]),
            "on_show": {str(ok(api.get(f"fairs/{fair['id']}"))["stats"]["products_on_show"])},
            "matches": {m["product_id"] for m in ok(api.get(f"procurements/{proc['id']}/matches?limit=50",
                                                            buyer))["items"]},
        }

    mine = {market.product["id"], kept["id"], cert_hold["id"]}
    before = seen()
    for name in ("browse", "search", "search_zh", "matches"):
        assert {kept["id"], cert_hold["id"], other["id"]} <= before[name], name
    assert before["by_vendor"] == mine
    assert before["stall"] == before["fair_filter"] == {kept["id"], cert_hold["id"]}
    assert before["on_show"] == {"2"}

    api.suspend(vendor)
    ok(api.post(f"certificates/{cert_hold['certificate_number']}/suspend", op, json={"reason": "审查 check"}))
    during = seen()
    for name in ("browse", "search", "search_zh", "matches"):
        assert other["id"] in during[name], name
        assert not mine & during[name], (name, during[name])
    assert during["by_vendor"] == during["stall"] == during["fair_filter"] == set()
    assert during["on_show"] == {"0"}
    # Each product keeps its own status: listed (the vendor's), suspended (its certificate's).
    assert ok(api.get(f"products/{kept['id']}"))["status"] == "listed"
    assert ok(api.get(f"products/{cert_hold['id']}", op))["status"] == "suspended"

    ok(api.post(f"organizations/{vendor.org_id}/reinstate", op, json={"reason": "cleared"}))
    after = seen()
    for name in ("browse", "search", "search_zh", "matches"):
        assert {kept["id"], other["id"]} <= after[name], name
        assert cert_hold["id"] not in after[name], name  # its certificate is still suspended
    assert after["by_vendor"] == mine - {cert_hold["id"]}
    assert after["stall"] == after["fair_filter"] == {kept["id"]}
    assert after["on_show"] == {"1"}


def test_a_suspended_buyers_demand_leaves_the_board_and_the_vendors_matches(market):
    api, vendor, buyer, op, product = market.api, market.vendor, market.buyer, market.op, market.product
    proc = ok(api.post("procurements", buyer, json=procurement_body()), 201)

    def seen() -> tuple[set[str], set[str]]:
        board = {p["id"] for p in ok(api.get("procurements?board=true&per_page=100", vendor))["items"]}
        matches = {m["procurement_id"] for m in ok(api.get(f"products/{product['id']}/matches", vendor))["items"]}
        return board, matches

    assert seen() == ({proc["id"]}, {proc["id"]})
    api.suspend(buyer)
    assert seen() == (set(), set())
    ok(api.post(f"organizations/{buyer.org_id}/reinstate", op, json={"reason": "cleared"}))
    assert seen() == ({proc["id"]}, {proc["id"]})


# -- the race: a signature and the suspension of its counterparty serialize ---------------------------------

@pytest.mark.postgres
def test_a_signature_waits_for_a_concurrent_suspension_of_the_seller_and_then_answers_409(app, market):
    api, vendor, buyer = market.api, market.vendor, market.buyer
    contract_id = contract(api, vendor, buyer, market.product)
    result: dict[str, Any] = {}

    def sign_now() -> None:
        r = app.test_client().post(f"/api/v1/contracts/{contract_id}/signatures", headers=buyer.headers, json={})
        result["status"], result["body"] = r.status_code, r.get_json()

    with app.app_context():
        # The suspension in progress: its transaction holds the organization row FOR UPDATE.
        with db.engine.connect() as suspending:
            suspending.execute(text("SELECT id FROM organizations WHERE id = :o FOR UPDATE"), {"o": vendor.org_id})
            suspending.execute(text("UPDATE organizations SET status = 'suspended' WHERE id = :o"),
                               {"o": vendor.org_id})
            signer = threading.Thread(target=sign_now)
            signer.start()
            time.sleep(1.0)
            assert signer.is_alive(), result  # the signature waits for the suspension's row lock
            suspending.commit()
        signer.join(10)
    assert result["status"] == 409, result
    assert result["body"]["detail"].startswith("The seller organization is suspended. "), result
    assert ok(api.get(f"contracts/{contract_id}", buyer))["signatures"] == []


def test_a_suspended_vendors_products_leave_the_public_stats_and_come_back(market):
    """`GET /stats` counts what the catalog shows: a suspended vendor's listed products (and the
    vendor) are out of `products_listed`, `vendors` and `by_category` until it is reinstated."""
    api, vendor, op, product = market.api, market.vendor, market.op, market.product

    def stats() -> tuple[int, int, int]:
        s = ok(api.get("stats"))
        in_category = next((c["products"] for c in s["by_category"] if c["category"] == product["category"]), 0)
        return s["products_listed"], s["vendors"], in_category

    catalog = ok(api.get("products?per_page=100"))["total"]
    before = stats()
    assert before[0] == catalog
    api.suspend(vendor)
    assert ok(api.get("products?per_page=100"))["total"] == catalog - 1
    assert stats() == (before[0] - 1, before[1] - 1, before[2] - 1)
    ok(api.post(f"organizations/{vendor.org_id}/reinstate", op, json={"reason": "cleared"}))
    assert stats() == before
