"""The money of per_call trades through the session: usage drawdowns (draw_usage) and the end of the
entitlement (end_per_call), and a property test of their sums over calls, unit prices, fee rates,
drawdown periods and a dispute in the middle."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.db import db
from exchange.errors import Conflict, ValidationFailed
from exchange.ledger.engine import balance
from exchange.ledger.verify import verify
from exchange.money import MAX_AMOUNT, fee_for
from tests.certflow import certify
from tests.tradeflow import bid, sign, terms
from trading import settlement
from trading.models import Trade

PER_CALL = {"model": "per_call", "amount": 7, "currency": "CNY"}


@pytest.fixture
def parties(api):
    return api.vendor(), api.enterprise(), api.operator()


def paid_trade(app, api, parties, product, *, calls, unit, bps=200):
    vendor, buyer, operator = parties
    app.config["FEE_BPS"] = bps
    offer = bid(api, buyer, product, amount=unit, terms=terms(product, calls=calls))
    contract = api.post(f"offers/{offer['id']}/accept", vendor).get_json()
    sign(api, buyer, contract["id"])
    trade_id = sign(api, vendor, contract["id"])["trade_id"]
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    assert api.post(f"payments/{payment['id']}/confirm", operator).status_code == 200
    return trade_id


def postings(api, operator, trade_id, kind=None):
    items = api.get(f"ledger/entries?trade_id={trade_id}&per_page=100", operator).get_json()["items"]
    return [(e["kind"], p) for e in items if kind in (None, e["kind"]) for p in e["postings"]]


def test_each_drawdown_takes_its_share_of_the_fee_and_the_end_refunds_the_rest(app, api, parties, session):
    vendor, _buyer, operator = parties
    product = certify(api, vendor, price=PER_CALL)
    # 150 bps of 7 is 0.105: per-entry rounding would take 0 every time; the cumulative rule does not drift.
    trade_id = paid_trade(app, api, parties, product, calls=1000, unit=7, bps=150)
    ids = [settlement.draw_usage(session, trade_id=trade_id, amount=7, period=f"2026-12-02T{h:02d}:00:00Z")
           for h in range(10)]
    session.commit()
    assert len(set(ids)) == 10
    trade = session.get(Trade, trade_id)
    assert trade.drawn_amount == 70 and trade.fee == fee_for(70, 150) == 1
    fees = [p["amount"] for _kind, p in postings(api, operator, trade_id, "usage")
            if p["account"].startswith("exchange_fees")]
    assert sum(fees) == 1
    with pytest.raises(ValidationFailed):
        settlement.draw_usage(session, trade_id=trade_id, amount=0, period="p")
    session.rollback()
    assert settlement.end_per_call(session, trade_id=trade_id) is True
    session.commit()
    trade = session.get(Trade, trade_id)
    assert trade.status == "settled" and trade.settlement == "usage_ended" and trade.settled_at is not None
    assert trade.refunded_amount == 7000 - 70
    assert balance(session, owner_id=trade_id, purpose="trade_escrow", currency="CNY") == 0
    assert balance(session, owner_id=vendor.org_id, purpose="seller_payable", currency="CNY") == 69
    with pytest.raises(Conflict):
        settlement.draw_usage(session, trade_id=trade_id, amount=7, period="late")
    session.rollback()
    assert verify(session)["valid"]


@st.composite
def plans(draw):
    calls = draw(st.one_of(st.integers(1, 50), st.integers(1, 10**9)))
    unit = draw(st.integers(1, min(10**6, MAX_AMOUNT // calls)))
    bps = draw(st.sampled_from([0, 1, 150, 200, 333, 9999, 10_000]) | st.integers(0, 10_000))
    used = draw(st.integers(0, calls))
    cuts = sorted(draw(st.lists(st.integers(0, used), max_size=8)))
    chunks = [b - a for a, b in zip([0, *cuts], [*cuts, used], strict=True) if b > a]
    dispute = draw(st.none() | st.integers(0, len(chunks)))
    refund_calls = draw(st.integers(0, calls - used)) if dispute is not None else 0
    return calls, unit, bps, chunks, dispute, refund_calls


def test_usage_and_refunds_add_up_to_what_was_paid(app, api, parties):
    vendor, buyer, operator = parties
    product = certify(api, vendor, price=PER_CALL)

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(plans())
    def run(plan):
        calls, unit, bps, chunks, dispute, refund_calls = plan
        trade_id = paid_trade(app, api, parties, product, calls=calls, unit=unit, bps=bps)
        with app.app_context():
            assert db.session.get(Trade, trade_id).fee_bps == bps
        for i in range(len(chunks) + 1):
            if i == dispute:
                assert api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "x"}).status_code == 201
                with app.app_context():
                    assert settlement.draw_usage(db.session, trade_id=trade_id, amount=unit, period="held") is None
                    db.session.commit()
                r = api.post(f"trades/{trade_id}/resolution", operator, json={"refund_amount": refund_calls * unit})
                assert r.status_code == 200 and r.get_json()["status"] == "delivered", r.get_json()
            if i < len(chunks):
                with app.app_context():
                    assert settlement.draw_usage(db.session, trade_id=trade_id, amount=chunks[i] * unit,
                                                 period=f"period-{i}")
                    db.session.commit()
        with app.app_context():
            assert settlement.end_per_call(db.session, trade_id=trade_id) is True
            db.session.commit()
            trade = db.session.get(Trade, trade_id)
            paid, drawn = trade.paid_amount, trade.drawn_amount
            assert paid == calls * unit and drawn == sum(chunks) * unit
            assert trade.fee == fee_for(drawn, bps)
            assert balance(db.session, owner_id=trade_id, purpose="trade_escrow", currency="CNY") == 0
            never_delivered = dispute is None and drawn == 0
            assert trade.status == ("refunded" if never_delivered else "settled")
            result = verify(db.session)
            db.session.rollback()
        assert result["valid"], result
        moves = postings(api, operator, trade_id)
        escrow_out = {k: -sum(p["amount"] for kind, p in moves if kind == k and p["account"].startswith("trade_escrow"))
                      for k in ("usage", "refund")}
        assert escrow_out["usage"] == drawn and escrow_out["usage"] + escrow_out["refund"] == paid
        assert sum(p["amount"] for _kind, p in moves if p["account"].startswith("exchange_fees")) == fee_for(drawn, bps)
        shown = api.get(f"trades/{trade_id}", buyer).get_json()
        assert shown["settled_amount"] == drawn and shown["refunded_amount"] == paid - drawn

    run()
