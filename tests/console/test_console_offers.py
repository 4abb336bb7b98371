"""Offers in the console (CONSOLE.md, /console/offers): Accept, Counter, Reject on a received pending offer."""

from __future__ import annotations

from typing import Any

from exchange.db import db
from tests.certflow import certify
from tests.console.helpers import Console, text
from tests.tradeflow import bid
from trading.models import Contract, Offer


def _setup(app: Any, api: Any) -> tuple[Any, Any, dict[str, Any], Console]:
    vendor, buyer = api.vendor(), api.enterprise()
    product = certify(api, vendor)
    offer = bid(api, buyer, product)
    c = Console(app)
    c.login(vendor.email)
    return vendor, buyer, offer, c


def test_vendor_accepts_a_buyers_offer_and_a_contract_is_created(app: Any, api: Any) -> None:
    _vendor, _buyer, offer, c = _setup(app, api)
    page = text(c.get("/console/offers"))
    assert "Accept" in page and "Counter" in page and "Reject" in page and "12,500.00" in page
    r = c.post(f"/console/offers/{offer['id']}/accept", page="/console/offers")
    assert r.status_code == 303
    with app.app_context():
        contract = db.session.query(Contract).filter_by(offer_id=offer["id"]).one()
        assert r.headers["Location"].endswith(f"/console/contracts/{contract.id}")


def test_counter_is_received_by_the_buyer_and_reject_ends_it(app: Any, api: Any) -> None:
    _vendor, buyer, offer, c = _setup(app, api)
    r = c.post(f"/console/offers/{offer['id']}/counter", {"amount": "13000.00", "duration_days": "180"},
               page="/console/offers")
    assert r.status_code == 303, text(r)[:2000]
    b = Console(app)
    b.login(buyer.email)
    page = b.get("/console/offers")
    assert "13,000.00" in text(page) and "Accept" in text(page)
    with app.app_context():
        new = db.session.query(Offer).filter_by(parent_id=offer["id"]).one()
        assert new.amount == 1_300_000 and new.to_org_id == buyer.org_id
        assert new.terms["duration_days"] == 180 and new.terms["scope"] == offer["terms"]["scope"]
    r = b.post(f"/console/offers/{new.id}/reject", page="/console/offers")
    assert r.status_code == 303
    with app.app_context():
        assert db.session.get(Offer, new.id).status == "rejected"


def test_accepting_an_offer_no_longer_pending_is_refused_and_nothing_changes(app: Any, api: Any) -> None:
    vendor, _buyer, offer, c = _setup(app, api)
    token_page = "/console/offers"
    token = c.token(token_page)
    assert api.post(f"offers/{offer['id']}/reject", vendor, json={}).status_code == 200
    r = c.post(f"/console/offers/{offer['id']}/accept", {"csrf_token": token}, csrf=False)
    assert r.status_code == 409
    assert "no longer pending" in text(r)
    with app.app_context():
        assert db.session.query(Contract).filter_by(offer_id=offer["id"]).count() == 0
        assert db.session.get(Offer, offer["id"]).status == "rejected"


def test_a_buyer_cannot_accept_its_own_offer(app: Any, api: Any) -> None:
    _vendor, buyer, offer, _c = _setup(app, api)
    b = Console(app)
    b.login(buyer.email)
    assert "Accept" not in text(b.get("/console/offers"))
    r = b.post(f"/console/offers/{offer['id']}/accept", page="/console/offers")
    assert r.status_code == 403
    with app.app_context():
        assert db.session.get(Offer, offer["id"]).status == "pending"
