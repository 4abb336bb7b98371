"""Subscriptions through the API on the domain clock (API.md, Subscriptions): one trade per calendar
period at the contract's price, renewal by the sweep with its re-checks, grace and lapse, the end
after the last period, the buyer's cancellation, and the entitlement's window following the periods
paid. Time moves by `NOW_OFFSET_S` (what `DATAFAIR_NOW_OFFSET_S` sets), never by sleeping."""

from __future__ import annotations

from datetime import timedelta

from exchange.ledger.verify import verify
from tests.deliveryflow import entitlement_of, pay, release
from tests.subscriptionflow import (
    YEAR,
    at_and_sweep,
    contract,
    events,
    parse,
    period_trades,
    set_clock,
    sub_terms,
    subscribe,
)
from trading import periods


def _ledger_ok(app) -> None:
    from exchange.db import db

    with app.app_context():
        report = verify(db.session)
        assert report["valid"], report


def test_period_one_starts_at_the_second_signature(api, app):
    deal = subscribe(api, periods=3, paid=False)
    c, t = deal["contract"], deal["trade"]
    signed = parse(c["signed_at"])
    assert c["terms"]["periods"] == 3 and c["terms"]["auto_renew"] is False
    assert t["period"] == {"index": 1, "start": c["signed_at"],
                           "end": periods.period(signed, "month", 1).end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    sub = c["subscription"]
    assert (sub["status"], sub["current_period"], sub["auto_renew"], sub["reason"]) == ("active", 1, False, None)
    assert parse(sub["renews_at"]) == periods.period(signed, "month", 1).end - timedelta(days=7)
    assert [(h["index"], h["trade_id"], h["status"]) for h in sub["history"]] == [(1, t["id"], "awaiting_payment")]
    assert t["amount"] == c["price"]["amount"] == 880_000 and t["currency"] == "HKD"


def test_subscription_terms_are_checked_against_the_price_model(api):
    from tests.certflow import certify

    vendor, buyer = api.vendor(), api.enterprise()
    one_time = certify(api, vendor, delivery_mode="file")
    monthly = certify(api, vendor, delivery_mode="file",
                      price={"model": "subscription", "amount": 100, "currency": "CNY", "period": "month"})

    def offer(product, terms):
        return api.post("offers", buyer, json={"product_id": product["id"], "terms": terms,
                                               "price": {"amount": 100, "currency": product["price"]["currency"]}})

    r = offer(one_time, {"scope": "commercial", "duration_days": 30, "delivery_mode": "file", "periods": 2})
    assert r.status_code == 422 and "terms.periods" in r.get_json()["errors"], r.get_json()
    r = offer(one_time, {"scope": "commercial", "delivery_mode": "file"})
    assert r.status_code == 422 and "terms.duration_days" in r.get_json()["errors"], r.get_json()
    r = offer(monthly, sub_terms(monthly, periods=37))
    assert r.status_code == 422, r.get_json()
    # Omitted, the subscription's terms are written out: one period, no auto-renewal.
    r = offer(monthly, sub_terms(monthly, periods=None, auto_renew=None))
    assert r.status_code == 201, r.get_json()
    assert (r.get_json()["terms"]["periods"], r.get_json()["terms"]["auto_renew"]) == (1, False)


def test_renewal_creates_the_next_period_at_the_contracts_price_and_grows_the_window(api, app):
    deal = subscribe(api, periods=3)
    buyer, c = deal["buyer"], deal["contract"]
    ent = entitlement_of(api, buyer, deal["trade"]["id"])
    signed = parse(c["signed_at"])
    p1, p2 = periods.period(signed, "month", 1), periods.period(signed, "month", 2)
    assert parse(ent["ends_at"]) == p1.end
    # Before renews_at nothing happens; at renews_at the sweep creates period 2, awaiting payment.
    at_and_sweep(app, p1.end - timedelta(days=7, minutes=2))
    assert len(period_trades(api, buyer, c["id"])) == 1
    at_and_sweep(app, p1.end - timedelta(days=7))
    first, second = period_trades(api, buyer, c["id"])
    assert second["period"]["index"] == 2 and parse(second["period"]["start"]) == p2.start
    assert (second["status"], second["amount"], second["currency"]) == ("awaiting_payment", 880_000, "HKD")
    (due,) = events(app, c["id"], "subscription.renewal_due")
    assert due.payload["trade_id"] == second["id"] and due.payload["period"]["index"] == 2
    assert sorted(due.org_ids) == sorted([buyer.org_id, deal["vendor"].org_id])
    sub = contract(api, buyer, c["id"])["subscription"]
    assert parse(sub["renews_at"]) == p2.end - timedelta(days=7) and sub["current_period"] == 1
    # A second sweep at the same moment makes no second trade.
    at_and_sweep(app, p1.end - timedelta(days=6))
    assert len(period_trades(api, buyer, c["id"])) == 2
    # Paid before it begins: the window grows to the end of period 2; the entitlement stays one.
    pay(api, buyer, second["id"])
    ent = entitlement_of(api, buyer, second["id"])
    assert ent["id"] == entitlement_of(api, buyer, first["id"])["id"]
    assert parse(ent["ends_at"]) == p2.end and ent["status"] == "active"
    _ledger_ok(app)


def test_an_unpaid_period_suspends_access_from_its_start_and_lapses_after_the_grace(api, app):
    deal = subscribe(api, periods=3)
    buyer, c = deal["buyer"], deal["contract"]
    signed = parse(c["signed_at"])
    p2 = periods.period(signed, "month", 2)
    at_and_sweep(app, p2.start - timedelta(days=7))
    second = period_trades(api, buyer, c["id"])[1]
    ent = entitlement_of(api, buyer, deal["trade"]["id"])
    assert ent["status"] == "active"
    # Period 2 has begun unpaid: suspended, reason period_unpaid (computed on read, persisted by the sweep).
    at_and_sweep(app, p2.start + timedelta(hours=1))
    ent = entitlement_of(api, buyer, deal["trade"]["id"])
    assert (ent["status"], ent["status_reason"]) == ("suspended", "period_unpaid")
    # Within the grace it may still be paid; 3 days after the start the sweep cancels it.
    at_and_sweep(app, p2.start + timedelta(days=3))
    t = api.get(f"trades/{second['id']}", buyer).get_json()
    assert t["status"] == "cancelled" and "not paid within 3 days" in t["cancel_reason"]
    r = api.post(f"trades/{second['id']}/payments", buyer, json={"provider": "manual"})
    assert r.status_code == 409, r.get_json()
    sub = contract(api, buyer, c["id"])["subscription"]
    assert sub["status"] == "lapsed" and "period 2" in sub["reason"] and sub["renews_at"] is None
    assert [e.payload["status"] for e in events(app, c["id"], "subscription.lapsed")] == ["lapsed"]
    ent = entitlement_of(api, buyer, deal["trade"]["id"])
    assert ent["status"] == "expired" and parse(ent["ends_at"]) == p2.start
    _ledger_ok(app)


def test_a_late_payment_within_the_grace_ends_the_suspension(api, app):
    deal = subscribe(api, periods=2)
    buyer, c = deal["buyer"], deal["contract"]
    p2 = periods.period(parse(c["signed_at"]), "month", 2)
    at_and_sweep(app, p2.start - timedelta(days=7))
    second = period_trades(api, buyer, c["id"])[1]
    at_and_sweep(app, p2.start + timedelta(days=1))
    assert entitlement_of(api, buyer, second["id"])["status"] == "suspended"
    pay(api, buyer, second["id"])
    ent = entitlement_of(api, buyer, second["id"])
    assert (ent["status"], parse(ent["ends_at"])) == ("active", p2.end)
    at_and_sweep(app, p2.start + timedelta(days=5))
    assert contract(api, buyer, c["id"])["subscription"]["status"] == "active"


def test_the_last_period_without_auto_renewal_ends_the_subscription(api, app):
    deal = subscribe(api, periods=1)
    buyer, c = deal["buyer"], deal["contract"]
    assert c["subscription"]["renews_at"] is None
    p1 = periods.period(parse(c["signed_at"]), "month", 1)
    at_and_sweep(app, p1.end - timedelta(minutes=2))
    assert contract(api, buyer, c["id"])["subscription"]["status"] == "active"
    assert entitlement_of(api, buyer, deal["trade"]["id"])["status"] == "active"
    at_and_sweep(app, p1.end)
    sub = contract(api, buyer, c["id"])["subscription"]
    assert sub["status"] == "ended" and len(period_trades(api, buyer, c["id"])) == 1
    assert entitlement_of(api, buyer, deal["trade"]["id"])["status"] == "expired"


def test_auto_renewal_continues_beyond_the_periods_and_years_are_calendar_years(api, app):
    deal = subscribe(api, periods=1, auto_renew=True, price=YEAR)
    buyer, c = deal["buyer"], deal["contract"]
    signed = parse(c["signed_at"])
    for index in (2, 3):
        p = periods.period(signed, "year", index)
        at_and_sweep(app, p.start - timedelta(days=7))
        trade = period_trades(api, buyer, c["id"])[index - 1]
        assert (trade["period"]["index"], parse(trade["period"]["end"])) == (index, p.end)
        assert trade["amount"] == 9_600_000
        pay(api, buyer, trade["id"])
    assert parse(entitlement_of(api, buyer, deal["trade"]["id"])["ends_at"]) == periods.period(signed, "year", 3).end
    _ledger_ok(app)


def test_the_buyer_cancels_the_paid_periods_run_to_their_end(api, app):
    deal = subscribe(api, periods=6)
    buyer, vendor, c = deal["buyer"], deal["vendor"], deal["contract"]
    p1 = periods.period(parse(c["signed_at"]), "month", 1)
    at_and_sweep(app, p1.end - timedelta(days=7))
    second = period_trades(api, buyer, c["id"])[1]
    r = api.post(f"trades/{second['id']}/payments", buyer, json={"provider": "manual"})
    payment = r.get_json()
    assert api.post(f"contracts/{c['id']}/subscription/cancel", vendor).status_code == 403
    assert api.post(f"contracts/{c['id']}/subscription/cancel", api.operator()).status_code == 403
    r = api.post(f"contracts/{c['id']}/subscription/cancel", buyer)
    assert r.status_code == 200, r.get_json()
    sub = r.get_json()["subscription"]
    assert (sub["status"], sub["reason"], sub["renews_at"]) == ("cancelled", "cancelled by the buyer", None)
    assert api.get(f"trades/{second['id']}", buyer).get_json()["status"] == "cancelled"
    assert api.get(f"payments/{payment['id']}", buyer).get_json()["status"] == "canceled"
    # The operator cannot confirm the transfer of a cancelled payment any more.
    assert api.post(f"payments/{payment['id']}/confirm", api.operator()).status_code == 409
    assert api.post(f"contracts/{c['id']}/subscription/cancel", buyer).status_code == 409
    # Period 1 runs to its end; then the entitlement expires and nothing renews.
    at_and_sweep(app, p1.end - timedelta(minutes=2))
    assert entitlement_of(api, buyer, deal["trade"]["id"])["status"] == "active"
    at_and_sweep(app, p1.end + timedelta(days=40))
    assert entitlement_of(api, buyer, deal["trade"]["id"])["status"] == "expired"
    assert len(period_trades(api, buyer, c["id"])) == 2
    assert contract(api, buyer, c["id"])["subscription"]["status"] == "cancelled"


def test_cancelling_what_is_not_a_subscription_is_a_conflict(api):
    from tests.tradeflow import contract_for, sign

    vendor, buyer = api.vendor(), api.enterprise()
    c = contract_for(api, vendor, buyer, delivery_mode="file")
    sign(api, buyer, c["id"])
    sign(api, vendor, c["id"])
    r = api.post(f"contracts/{c['id']}/subscription/cancel", buyer)
    assert r.status_code == 409 and "not a subscription" in r.get_json()["detail"]
    assert api.get(f"contracts/{c['id']}", buyer).get_json()["subscription"] is None
    assert api.post(f"contracts/{c['id']}/subscription/cancel", api.enterprise()).status_code == 404


def test_renewal_rechecks_the_certificate_and_the_organizations(api, app):
    suspended_cert = subscribe(api, periods=3)
    suspended_org = subscribe(api, periods=3)
    op = api.operator()
    cert_number = suspended_cert["contract"]["certificate_number"]
    r = api.post(f"certificates/{cert_number}/suspend", op, json={"reason": "source licence under review"})
    assert r.status_code == 200, r.get_json()
    r = api.post(f"organizations/{suspended_org['buyer'].org_id}/suspend", op, json={"reason": "unpaid fees"})
    assert r.status_code == 200, r.get_json()
    latest = max(parse(d["contract"]["signed_at"]) for d in (suspended_cert, suspended_org))
    at_and_sweep(app, periods.period(latest, "month", 1).end - timedelta(days=6))
    for deal, words in ((suspended_cert, f"certificate {cert_number} is suspended"),
                        (suspended_org, "the buyer organization is suspended")):
        sub = contract(api, deal["vendor"], deal["contract"]["id"])["subscription"]
        assert sub["status"] == "lapsed" and words in sub["reason"], sub
        assert len(period_trades(api, deal["vendor"], deal["contract"]["id"])) == 1


def test_a_full_refund_of_the_running_period_revokes_access_and_refunds_the_paid_future(api, app):
    deal = subscribe(api, periods=3)
    buyer, c, op = deal["buyer"], deal["contract"], api.operator()
    p1 = periods.period(parse(c["signed_at"]), "month", 1)
    at_and_sweep(app, p1.end - timedelta(days=7))
    second = pay(api, buyer, period_trades(api, buyer, c["id"])[1]["id"])
    first = deal["trade"]
    assert api.post(f"trades/{first['id']}/disputes", buyer, json={"reason": "empty files"}).status_code == 201
    r = api.post(f"trades/{first['id']}/resolution", op, json={"refund_amount": first["amount"], "end_access": False})
    assert r.status_code == 200 and r.get_json()["status"] == "refunded", r.get_json()
    assert entitlement_of(api, buyer, first["id"])["status"] == "revoked"
    sub = contract(api, buyer, c["id"])["subscription"]
    assert sub["status"] == "ended" and "access revoked" in sub["reason"]
    second = api.get(f"trades/{second['id']}", buyer).get_json()
    assert (second["status"], second["refunded_amount"]) == ("refunded", second["amount"])
    _ledger_ok(app)


def test_a_period_file_trade_is_delivered_no_earlier_than_its_start(api, app):
    deal = subscribe(api, periods=2, paid=False)
    buyer, vendor, c = deal["buyer"], deal["vendor"], deal["contract"]
    release(api, vendor, c["product_id"])
    first = pay(api, buyer, deal["trade"]["id"])
    assert first["status"] == "delivered"
    p2 = periods.period(parse(c["signed_at"]), "month", 2)
    at_and_sweep(app, p2.start - timedelta(days=7))
    second = pay(api, buyer, period_trades(api, buyer, c["id"])[1]["id"])
    assert second["status"] == "escrowed"
    at_and_sweep(app, p2.start - timedelta(minutes=2))
    assert api.get(f"trades/{second['id']}", buyer).get_json()["status"] == "escrowed"
    at_and_sweep(app, p2.start)
    t = api.get(f"trades/{second['id']}", buyer).get_json()
    assert t["status"] == "delivered" and parse(t["delivered_at"]) >= p2.start
    # Each period settles on its own: period 1 auto-settles though period 2 is delivered later.
    at_and_sweep(app, p2.start + timedelta(days=8))
    assert api.get(f"trades/{first['id']}", buyer).get_json()["status"] == "settled"
    _ledger_ok(app)


def test_unpaid_trades_are_cancelled_after_the_payment_days(api, app):
    from tests.deliveryflow import signed_trade

    vendor, buyer = api.vendor(), api.enterprise()
    trade = signed_trade(api, vendor, buyer)
    created = parse(trade["created_at"])
    at_and_sweep(app, created + timedelta(days=14) - timedelta(minutes=2))
    assert api.get(f"trades/{trade['id']}", buyer).get_json()["status"] == "awaiting_payment"
    at_and_sweep(app, created + timedelta(days=14))
    t = api.get(f"trades/{trade['id']}", buyer).get_json()
    assert t["status"] == "cancelled" and "14 days" in t["cancel_reason"]


def test_an_operator_cancels_an_unpaid_trade_and_never_a_paid_one(api, app):
    from tests.deliveryflow import signed_trade

    vendor, buyer, op = api.vendor(), api.enterprise(), api.operator()
    unpaid = signed_trade(api, vendor, buyer)
    paid = pay(api, buyer, signed_trade(api, vendor, buyer)["id"])
    assert api.post(f"trades/{unpaid['id']}/cancel", buyer, json={"reason": "x"}).status_code == 403
    r = api.post(f"trades/{unpaid['id']}/cancel", op, json={"reason": "the parties agreed"})
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled", r.get_json()
    assert r.get_json()["cancel_reason"] == "cancelled by an operator: the parties agreed"
    r = api.post(f"trades/{paid['id']}/cancel", op, json={"reason": "no"})
    assert r.status_code == 409 and api.get(f"trades/{paid['id']}", buyer).get_json()["status"] == "escrowed"
    assert api.post(f"trades/{unpaid['id']}/cancel", op, json={}).status_code == 422


def test_the_domain_clock_does_not_move_token_validation(api, app):
    buyer = api.enterprise()
    set_clock(app, parse("2031-06-01T00:00:00Z"))
    r = api.get("me", buyer)
    assert r.status_code == 200, r.get_json()


def test_one_sweep_past_two_deadlines_lapses_and_leaves_nothing_awaiting_payment(api, app):
    """Found by the state machine: a sweep that runs only after period 2's grace and period 3's
    renewal date lapses the subscription for period 2 and creates no period 3."""
    deal = subscribe(api, periods=3)
    buyer, c = deal["buyer"], deal["contract"]
    anchor = parse(c["signed_at"])
    at_and_sweep(app, periods.period(anchor, "month", 2).start - timedelta(days=7))  # period 2 created
    at_and_sweep(app, periods.period(anchor, "month", 3).start - timedelta(days=6))
    sub = contract(api, buyer, c["id"])["subscription"]
    assert sub["status"] == "lapsed" and "period 2" in sub["reason"], sub
    statuses = {t["period"]["index"]: t["status"] for t in period_trades(api, buyer, c["id"])}
    assert statuses == {1: "escrowed", 2: "cancelled"}, statuses
