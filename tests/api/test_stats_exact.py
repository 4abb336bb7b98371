"""Public statistics stay exact integers at the extreme of what the API accepts (security issue, item 7).

An amount is capped at 2^53-1, but a sum is not: 1,025 trades of 2^53-1 in one currency pass 2^63.
`GET /stats` and a fair's stats must answer 200 with the exact integer sum (no float anywhere, no
500 from SQLite's SUM or PostgreSQL's bigint), and count only money that reached escrow: a signed
contract whose trade is unpaid, or a contract still awaiting signatures, adds nothing to the volume.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import insert, select

from exchange.db import db
from exchange.identity.models import Organization
from exchange.money import MAX_AMOUNT
from exchange.states import load_for_update
from tests.certflow import certify
from tests.tradeflow import bid, live_fair, sign
from trading import contracts, payments
from trading.models import Contract, Offer, Payment, Signature, Trade

# Past 2^63 / (2^53 - 1) = 1024.000...: the first sum a 64-bit integer cannot hold.
CLONES = 1_030


def _no_floats(raw: bytes) -> Any:
    def refuse(text: str) -> Any:
        raise AssertionError(f"a float in the body: {text}")

    return json.loads(raw, parse_float=refuse, parse_constant=refuse)


def _pay(api: Any, buyer: Any, trade_id: str) -> None:
    r = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"})
    assert r.status_code == 201, r.get_json()
    r = api.post(f"payments/{r.get_json()['id']}/confirm", api.operator())
    assert r.status_code == 200, r.get_json()


def _accepted(api: Any, vendor: Any, buyer: Any, product: dict[str, Any]) -> dict[str, Any]:
    offer = bid(api, buyer, product)
    r = api.post(f"offers/{offer['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _clone(row: Any, **changes: Any) -> dict[str, Any]:
    return {**{c.key: getattr(row, c.key) for c in row.__table__.columns}, **changes}


def _paid_on_site_clones(app: Any, template_id: str, fair_id: str, n: int) -> None:
    """n more contracts like the template, each from its own buyer (a buyer's funding account holds at
    most 2^53-1), concluded on site and escrowed through the code paths the API runs
    (`contracts._conclude` after the second signature, `payments._escrow_payment` on a confirmed payment)."""
    with app.app_context():
        session = db.session
        contract = session.get(Contract, template_id)
        offer = session.get(Offer, contract.offer_id)
        buyer = session.get(Organization, contract.buyer_org_id)
        payment = session.execute(select(Payment).where(
            Payment.trade_id == session.execute(select(Trade.id).where(Trade.contract_id == template_id)).scalar_one()
        )).scalar_one()
        orgs, offers, made = [], [], []
        for i in range(n):
            org_id, offer_id, contract_id = f"org_x{i:05d}", f"ofr_x{i:05d}", f"ctr_x{i:05d}"
            orgs.append(_clone(buyer, id=org_id, name=f"extreme buyer {i}", registration_number=f"X-{i:08d}"))
            offers.append(_clone(offer, id=offer_id, thread_id=offer_id, from_org_id=org_id, buyer_org_id=org_id))
            made.append(_clone(contract, id=contract_id, number=f"X-{i:08d}", offer_id=offer_id, buyer_org_id=org_id,
                               procurement_id=None, status="pending_signatures", signed_at=None, on_site=False,
                               fair_id=None))
        session.execute(insert(Organization), orgs)
        session.execute(insert(Offer), offers)
        session.execute(insert(Contract), made)
        for i, row in enumerate(made):
            c = load_for_update(session, Contract, row["id"])
            here = Signature(contract_id=c.id, org_id=c.buyer_org_id, on_site=True, fair_id=fair_id, stall_code="A-01")
            trade = contracts._conclude(session, c, [here])
            p = Payment(**_clone(payment, id=f"pay_x{i:05d}", trade_id=trade.id, status="pending",
                                 provider_ref=None, confirmed_at=None, confirmed_by=None))
            session.add(p)
            session.flush()
            payments._escrow_payment(session, p, trade, None)
        session.commit()


@pytest.fixture
def extreme_market(api: Any) -> dict[str, Any]:
    """One fair where CLONES + 1 contracts of 2^53-1 CNY were signed on site and paid, one more signed
    on site but unpaid, and one awaiting its second signature."""
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor, price={"model": "one_time", "amount": MAX_AMOUNT, "currency": "CNY"})
    fair, stall = live_fair(api, vendor, [product["id"]])
    on_site = {"on_site": True, "fair_id": fair["id"], "stall_code": stall["code"]}

    paid = _accepted(api, vendor, buyer, product)
    sign(api, buyer, paid["id"], **on_site)
    paid = sign(api, vendor, paid["id"])
    _pay(api, buyer, paid["trade_id"])

    unpaid_buyer = api.enterprise()
    unpaid = _accepted(api, vendor, unpaid_buyer, product)
    sign(api, unpaid_buyer, unpaid["id"], **on_site)
    assert sign(api, vendor, unpaid["id"])["status"] == "signed"

    pending_buyer = api.enterprise()
    pending = _accepted(api, vendor, pending_buyer, product)
    sign(api, pending_buyer, pending["id"], **on_site)

    _paid_on_site_clones(api.app, paid["id"], fair["id"], CLONES)
    return {"fair": fair, "paid": CLONES + 1, "signed": CLONES + 2}


def test_market_and_fair_volumes_are_exact_integers_past_2_63(api, extreme_market):
    expected = sum([MAX_AMOUNT] * extreme_market["paid"])
    assert expected > 2**63

    r = api.get("stats")
    assert r.status_code == 200, r.data[:500]
    stats = _no_floats(r.data)
    assert stats["volume"] == [{"currency": "CNY", "amount": expected}]
    assert type(stats["volume"][0]["amount"]) is int
    assert stats["contracts_signed"] == extreme_market["signed"]

    fair_id = extreme_market["fair"]["id"]
    r = api.get(f"fairs/{fair_id}")
    assert r.status_code == 200, r.data[:500]
    fair_stats = _no_floats(r.data)["stats"]
    assert fair_stats["volume"] == [{"currency": "CNY", "amount": expected}]
    assert fair_stats["contracts_signed_on_site"] == extreme_market["signed"]

    r = api.get("fairs")
    assert r.status_code == 200, r.data[:500]
    listed = next(f for f in _no_floats(r.data)["items"] if f["id"] == fair_id)
    assert listed["stats"] == fair_stats


def test_volume_counts_money_that_reached_escrow_net_of_refunds(api):
    """Small amounts, every kind of contract: only escrowed money counts, refunds come off, per currency."""
    vendor = api.vendor()
    cny = certify(api, vendor, price={"model": "one_time", "amount": 1_000, "currency": "CNY"})
    hkd = certify(api, vendor, price={"model": "one_time", "amount": 70, "currency": "HKD"})
    fair, stall = live_fair(api, vendor, [cny["id"], hkd["id"]])
    on_site = {"on_site": True, "fair_id": fair["id"], "stall_code": stall["code"]}
    op = api.operator()

    def signed(product: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        buyer = api.enterprise()
        c = _accepted(api, vendor, buyer, product)
        sign(api, buyer, c["id"], **on_site)
        return buyer, sign(api, vendor, c["id"])

    buyer, c = signed(cny)                   # paid: counts 1,000
    _pay(api, buyer, c["trade_id"])
    buyer, c = signed(hkd)                   # paid: counts 70 HKD
    _pay(api, buyer, c["trade_id"])
    signed(cny)                              # signed, never paid: counts nothing
    buyer, c = signed(cny)                   # paid, then refunded 300 in a dispute: counts 700
    _pay(api, buyer, c["trade_id"])
    assert api.post(f"trades/{c['trade_id']}/disputes", buyer, json={"reason": "partly wrong"}).status_code == 201
    r = api.post(f"trades/{c['trade_id']}/resolution", op, json={"refund_amount": 300})
    assert r.status_code == 200, r.get_json()
    buyer, c = signed(cny)                   # paid, then refunded in full: counts nothing
    _pay(api, buyer, c["trade_id"])
    assert api.post(f"trades/{c['trade_id']}/disputes", buyer, json={"reason": "all wrong"}).status_code == 201
    assert api.post(f"trades/{c['trade_id']}/resolution", op, json={"refund_amount": 1_000}).status_code == 200
    pending_buyer = api.enterprise()         # awaiting the seller's signature: counts nothing
    sign(api, pending_buyer, _accepted(api, vendor, pending_buyer, cny)["id"], **on_site)

    volume = [{"currency": "CNY", "amount": 1_700}, {"currency": "HKD", "amount": 70}]
    stats = _no_floats(api.get("stats").data)
    assert stats["volume"] == volume
    assert stats["contracts_signed"] == 5
    fair_stats = _no_floats(api.get(f"fairs/{fair['id']}").data)["stats"]
    assert fair_stats["volume"] == volume
    assert fair_stats["contracts_signed_on_site"] == 5
