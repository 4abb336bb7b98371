"""The lists operators act on (payments to confirm, disputes to resolve, payouts) and what each party
sees of them; a trade's payments; matches a buyer can decide on; a counter-offer that keeps the terms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, update

from exchange.db import db, new_id, utcnow
from exchange.fields import iso_z
from tests.certflow import certify
from tests.tradeflow import bid, sign, terms
from trading.models import Payment

SHA = "e" * 64


def _ok(r, status=200):
    assert r.status_code == status, r.get_json()
    return r.get_json()


def _trade(api, vendor, buyer, product):
    """A signed trade on `product` (a new bid, accepted, signed by both sides)."""
    contract = _ok(api.post(f"offers/{bid(api, buyer, product)['id']}/accept", vendor), 201)
    sign(api, buyer, contract["id"])
    return sign(api, vendor, contract["id"])["trade_id"]


def _pay(api, buyer, trade_id, confirm_by=None):
    payment = _ok(api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}), 201)
    if confirm_by is not None:
        _ok(api.post(f"payments/{payment['id']}/confirm", confirm_by))
    return payment["id"]


@pytest.fixture
def market(api):
    """Two sellers, two buyers and an outsider, with:
    a: vendor -> buyer, paid, delivered, disputed (open);  b: vendor2 -> buyer2, paid, disputed, resolved;
    c: vendor -> buyer, settled;  d: vendor -> buyer, a manual payment pending (the operators' queue);
    a payout to each seller."""
    op = api.operator()
    vendor, vendor2 = api.vendor(), api.vendor()
    buyer, buyer2, outsider = api.enterprise(), api.enterprise(), api.enterprise()
    p1, p2 = certify(api, vendor), certify(api, vendor2)
    t = {"a": _trade(api, vendor, buyer, p1), "b": _trade(api, vendor2, buyer2, p2),
         "c": _trade(api, vendor, buyer, p1), "d": _trade(api, vendor, buyer, p1)}
    pay = {"a": _pay(api, buyer, t["a"], op), "b": _pay(api, buyer2, t["b"], op), "c": _pay(api, buyer, t["c"], op),
           "d": _pay(api, buyer, t["d"])}
    for name in ("a", "c"):
        _ok(api.post(f"trades/{t[name]}/delivery", vendor, json={"reference": "sftp://x/data.csv", "sha256": SHA}))
    _ok(api.post(f"trades/{t['c']}/acceptance", buyer))
    disputes = {"a": _ok(api.post(f"trades/{t['a']}/disputes", buyer, json={"reason": "行数不足 rows missing"}), 201),
                "b": _ok(api.post(f"trades/{t['b']}/disputes", buyer2, json={"reason": "late"}), 201)}
    _ok(api.post(f"trades/{t['b']}/resolution", op, json={"refund_amount": 0}))
    payouts = {
        "vendor": _ok(api.post("payouts", op, json={"org_id": vendor.org_id, "currency": "CNY", "amount": 100_000}),
                      201),
        "vendor2": _ok(api.post("payouts", op, json={"org_id": vendor2.org_id, "currency": "CNY",
                                                     "amount": 200_000}), 201),
    }
    return {"op": op, "vendor": vendor, "vendor2": vendor2, "buyer": buyer, "buyer2": buyer2, "outsider": outsider,
            "trades": t, "payments": pay, "disputes": disputes, "payouts": payouts}


def _ids(api, path, actor):
    return [item["id"] for item in _ok(api.get(path, actor))["items"]]


def test_payments_the_operators_queue_and_each_partys_own(api, market):
    m, pay = market, market["payments"]
    assert _ids(api, "payments", m["op"]) == [pay["a"], pay["b"], pay["c"], pay["d"]]  # oldest first
    # The queue of transfers to confirm.
    queue = _ok(api.get("payments?status=pending", m["op"]))
    assert [p["id"] for p in queue["items"]] == [pay["d"]] and queue["total"] == 1
    assert queue["items"][0]["provider"] == "manual" and queue["items"][0]["trade_id"] == m["trades"]["d"]
    assert queue["items"][0]["amount"] == 1_250_000 and queue["items"][0]["currency"] == "CNY"
    # The buyer and the seller see their trades' payments; nobody else sees any.
    assert _ids(api, "payments", m["buyer"]) == [pay["a"], pay["c"], pay["d"]]
    assert _ids(api, "payments", m["vendor"]) == [pay["a"], pay["c"], pay["d"]]
    assert _ids(api, "payments", m["buyer2"]) == [pay["b"]]
    assert _ids(api, "payments", m["vendor2"]) == [pay["b"]]
    assert _ok(api.get("payments", m["outsider"])) == {"items": [], "total": 0, "page": 1, "per_page": 20}
    # Filters.
    assert _ids(api, f"payments?trade_id={m['trades']['c']}", m["vendor"]) == [pay["c"]]
    assert _ids(api, f"payments?trade_id={m['trades']['b']}&status=succeeded", m["op"]) == [pay["b"]]
    assert _ids(api, f"payments?trade_id={m['trades']['b']}&status=pending", m["op"]) == []
    assert _ids(api, "payments?status=succeeded", m["buyer"]) == [pay["a"], pay["c"]]
    # Another organization's trade answers exactly as an unknown one.
    theirs = api.get(f"payments?trade_id={m['trades']['b']}", m["buyer"])
    unknown = api.get(f"payments?trade_id={new_id('trd')}", m["buyer"])
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.get_json()["detail"] == unknown.get_json()["detail"]
    # Pages and validation.
    page = _ok(api.get("payments?per_page=2&page=2", m["op"]))
    assert [p["id"] for p in page["items"]] == [pay["c"], pay["d"]] and page["total"] == 4
    for query in ("per_page=0", "per_page=101", "page=0", "status=paid"):
        r = api.get(f"payments?{query}", m["op"])
        assert r.status_code == 422, (query, r.get_json())


def test_a_trade_shows_its_payments_never_a_client_secret(app, api, market):
    m, pay = market, market["payments"]
    # As Stripe would store it for the pending payment: the secret that completes it.
    with app.app_context():
        db.session.execute(update(Payment).where(Payment.id == pay["d"]).values(client_secret="pi_x_secret_QUEUE"))
        db.session.commit()
    assert api.get(f"payments/{pay['d']}", m["buyer"]).get_json()["client_secret"] == "pi_x_secret_QUEUE"
    for actor in (m["buyer"], m["vendor"], m["op"]):
        trade = _ok(api.get(f"trades/{m['trades']['d']}", actor))
        (shown,) = trade["payments"]
        assert shown["id"] == pay["d"] and shown["status"] == "pending" and shown["provider"] == "manual"
        assert shown["amount"] == trade["amount"] and shown["currency"] == trade["currency"]
        assert "client_secret" not in shown
        listed = _ok(api.get("payments?status=pending", actor))["items"]
        assert listed and all("client_secret" not in p for p in listed)
        assert "pi_x_secret_QUEUE" not in api.get("trades?per_page=100", actor).get_data(as_text=True)
    # Escrowed by the operator's confirmation: the trade shows its payment succeeded.
    trade = _ok(api.get(f"trades/{m['trades']['a']}", m["buyer"]))
    assert [(p["id"], p["status"]) for p in trade["payments"]] == [(pay["a"], "succeeded")]
    assert trade["payments"][0]["confirmed_at"] is not None
    # A cancelled payment and the next one: both, oldest first, in the trade and in its list item.
    _ok(api.post(f"payments/{pay['d']}/cancel", m["buyer"]))
    again = _pay(api, m["buyer"], m["trades"]["d"])
    trade = _ok(api.get(f"trades/{m['trades']['d']}", m["buyer"]))
    assert [(p["id"], p["status"]) for p in trade["payments"]] == [(pay["d"], "canceled"), (again, "pending")]
    listed = {t["id"]: t for t in _ok(api.get("trades?per_page=100", m["buyer"]))["items"]}
    assert listed[m["trades"]["d"]]["payments"] == trade["payments"]
    assert listed[m["trades"]["c"]]["payments"][0]["id"] == pay["c"]


def test_disputes_the_operators_queue_and_the_parties_own(api, market):
    m, d = market, market["disputes"]
    assert _ids(api, "disputes", m["op"]) == [d["a"]["id"], d["b"]["id"]]
    open_ = _ok(api.get("disputes?status=open", m["op"]))
    assert [x["id"] for x in open_["items"]] == [d["a"]["id"]] and open_["total"] == 1
    assert open_["items"][0]["trade_id"] == m["trades"]["a"] and open_["items"][0]["reason"] == "行数不足 rows missing"
    resolved = _ok(api.get("disputes?status=resolved", m["op"]))["items"]
    assert [x["id"] for x in resolved] == [d["b"]["id"]]
    assert resolved[0]["status"] == "resolved" and resolved[0]["refund_amount"] == 0 and resolved[0]["resolved_at"]
    for who, mine in (("buyer", "a"), ("vendor", "a"), ("buyer2", "b"), ("vendor2", "b")):
        assert _ids(api, "disputes", m[who]) == [d[mine]["id"]], who
    assert _ids(api, "disputes?status=open", m["buyer2"]) == []
    assert _ids(api, "disputes", m["outsider"]) == []
    assert _ok(api.get("disputes?per_page=1&page=2", m["op"]))["items"][0]["id"] == d["b"]["id"]
    for query in ("status=closed", "per_page=101", "page=0"):
        assert api.get(f"disputes?{query}", m["op"]).status_code == 422, query
    assert api.get("disputes").status_code == 401


def test_payouts_operators_all_an_organization_its_own(api, market):
    m, po = market, market["payouts"]
    assert _ids(api, "payouts", m["op"]) == [po["vendor2"]["id"], po["vendor"]["id"]]  # newest first
    mine = _ok(api.get(f"payouts?org_id={m['vendor'].org_id}", m["op"]))["items"]
    assert [(p["id"], p["org_id"], p["amount"], p["status"]) for p in mine] == [
        (po["vendor"]["id"], m["vendor"].org_id, 100_000, "paid")]
    assert _ids(api, "payouts?currency=CNY", m["op"]) == [po["vendor2"]["id"], po["vendor"]["id"]]
    assert _ids(api, "payouts?currency=HKD", m["op"]) == []
    assert _ids(api, "payouts", m["vendor"]) == [po["vendor"]["id"]]
    assert _ids(api, "payouts", m["vendor2"]) == [po["vendor2"]["id"]]
    # Another organization's payouts: nothing, as for an organization with none.
    other = _ok(api.get(f"payouts?org_id={m['vendor2'].org_id}", m["vendor"]))
    assert other["items"] == [] and other["total"] == 0
    for who in ("buyer", "outsider"):
        assert _ids(api, "payouts", m[who]) == []
    for query in ("currency=USD", "per_page=0", "per_page=101"):
        assert api.get(f"payouts?{query}", m["op"]).status_code == 422, query


def test_matches_embed_what_the_buyer_decides_on(api):
    vendor, buyer, op = api.vendor(), api.enterprise(), api.operator()
    _ok(api.patch(f"organizations/{vendor.org_id}", vendor, json={"display_name": "穗交通 GZ Traffic"}))
    vendor2 = api.vendor()
    products = [
        certify(api, vendor, title="广州实时交通流量 Guangzhou real-time traffic", keywords=["traffic", "交通"]),
        certify(api, vendor2, title="深圳交通路况 Shenzhen traffic", keywords=["traffic", "交通"],
                price={"model": "subscription", "amount": 880_000, "currency": "CNY", "period": "month"},
                delivery_mode="file"),
    ]
    proc = _ok(api.post("procurements", buyer, json={
        "title": "采购交通数据 traffic data wanted", "description": "signal timing", "category": "transport",
        "keywords": ["traffic", "交通"], "budget": {"max_amount": 2_000_000, "currency": "CNY"},
        "deadline": iso_z(utcnow() + timedelta(days=30)), "visibility": "public"}), 201)
    for actor in (buyer, op):
        items = {m["product_id"]: m for m in _ok(api.get(f"procurements/{proc['id']}/matches", actor))["items"]}
        assert set(items) == {p["id"] for p in products}
        for product in products:
            got = items[product["id"]]
            assert got["title"] == product["title"]
            assert got["price"] == product["price"]
            assert got["delivery_mode"] == product["delivery_mode"]
            assert got["certificate_number"] == product["certificate_number"] is not None
            assert got["vendor_org_id"] == product["owner_org_id"]
            assert 0 <= got["score"] <= 1 and got["reasons"]
        assert items[products[0]["id"]]["vendor"] == "穗交通 GZ Traffic"
        name2 = _ok(api.get(f"organizations/{vendor2.org_id}", op))["name"]
        assert items[products[1]["id"]]["vendor"] == name2


def test_a_counter_offer_without_terms_keeps_the_countered_terms(api):
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor)
    asked = terms(product, duration_days=90, scope="internal_use")
    offer = bid(api, buyer, product, amount=1_000_000, terms=asked)
    r = api.post(f"offers/{offer['id']}/counter", vendor, json={"price": {"amount": 1_200_000, "currency": "CNY"}})
    countered = _ok(r, 201)
    assert countered["terms"] == offer["terms"] == asked
    assert countered["price"] == {"amount": 1_200_000, "currency": "CNY"} and countered["parent_id"] == offer["id"]
    assert _ok(api.get(f"offers/{offer['id']}", buyer))["status"] == "countered"
    # The buyer counters back with new terms: those are checked as ever, and kept when omitted again.
    wrong = terms(product, delivery_mode="file")
    r = api.post(f"offers/{countered['id']}/counter", buyer,
                 json={"price": {"amount": 1_100_000, "currency": "CNY"}, "terms": wrong})
    assert r.status_code == 422 and "terms.delivery_mode" in r.get_json()["errors"], r.get_json()
    assert api.post(f"offers/{countered['id']}/counter", buyer, json={"terms": asked}).status_code == 422
    r = api.post(f"offers/{countered['id']}/counter", buyer, json={"price": {"amount": 1_100_000, "currency": "HKD"}})
    assert r.status_code == 422 and "price.currency" in r.get_json()["errors"], r.get_json()
    again = _ok(api.post(f"offers/{countered['id']}/counter", buyer,
                         json={"price": {"amount": 1_100_000, "currency": "CNY"}}), 201)
    assert again["terms"] == asked and again["price"]["amount"] == 1_100_000


def test_matches_load_their_products_facts_in_one_query_for_any_limit(app, api):
    vendor, buyer = api.vendor(), api.enterprise()
    for n in range(3):
        certify(api, vendor, title=f"交通流量 traffic flow {n}", keywords=["traffic"])
    proc = _ok(api.post("procurements", buyer, json={
        "title": "traffic", "description": "d", "category": "transport", "keywords": ["traffic"],
        "budget": {"max_amount": 2_000_000, "currency": "CNY"}, "deadline": iso_z(utcnow() + timedelta(days=9))}), 201)
    with app.app_context():
        engine = db.engine

    def statements(limit):
        seen = []

        def count(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            items = _ok(api.get(f"procurements/{proc['id']}/matches?limit={limit}", buyer))["items"]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(items) == limit and all(m["title"] and m["vendor"] for m in items)
        return len(seen)

    statements(1)  # warm-up
    assert statements(1) == statements(3)
