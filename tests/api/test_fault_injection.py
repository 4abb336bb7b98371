"""Fault injection: an exception raised at each step inside payment confirmation, offer acceptance,
delivery acceptance and dispute settlement, the automatic settlement sweep and contract signing —
including inside the ledger's own posting and at the request's commit — leaves no partial state:
the request answers a 500 without details, every object keeps its state, the ledger and the trades
agree (tests.consistency) and `verify` is green, and the same request succeeds once the fault is gone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange.db import db
from listings.models import Fair
from tests.consistency import assert_consistent
from tests.tradeflow import bid, live_fair, sign
from trading.models import Contract

SHA = "e" * 64


class Injected(RuntimeError):
    """The fault: an unexpected exception, as a bug or a lost connection would raise."""


def inject(monkeypatch: pytest.MonkeyPatch, target: str, *, on_call: int = 1) -> list[int]:
    """Make `module.attribute` (or `module.Class.method`) raise Injected on its `on_call`-th call."""
    module_name, _, attribute = target.rpartition(".")
    try:
        owner: Any = importlib.import_module(module_name)
    except ModuleNotFoundError:
        module_name, _, cls = module_name.rpartition(".")
        owner = getattr(importlib.import_module(module_name), cls)
    original: Callable[..., Any] = getattr(owner, attribute)
    calls = [0]

    def faulty(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == on_call:
            raise Injected(f"injected into {target}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, faulty)
    return calls


COMMIT = "sqlalchemy.orm.Session.commit"


def _fails_cleanly(r: Any) -> None:
    assert r.status_code == 500, r.get_json()
    assert r.mimetype == "application/problem+json"
    assert "injected" not in r.get_data(as_text=True) and "Traceback" not in r.get_data(as_text=True)


# One populated exchange for the module (each test makes trades of its own on its listed product).
@pytest.fixture
def api(shared_world):
    return shared_world.api


@pytest.fixture
def app(shared_world):
    return shared_world.api.app


@pytest.fixture
def parties(shared_world):
    return shared_world.actors["owner"], shared_world.actors["buyer"], shared_world.actors["operator"]


@pytest.fixture
def product(shared_world):
    return shared_world.api.get(f"products/{shared_world.ids['product']}").get_json()


def _contracts(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Contract))


def _trade(api, vendor, buyer, product):
    offer = bid(api, buyer, product)
    contract = api.post(f"offers/{offer['id']}/accept", vendor).get_json()
    sign(api, buyer, contract["id"])
    return sign(api, vendor, contract["id"])["trade_id"]


def _status(api, actor, trade_id):
    return api.get(f"trades/{trade_id}", actor).get_json()["status"]


def _entries(api, actor, trade_id):
    return [e["kind"] for e in api.get(f"ledger/entries?trade_id={trade_id}", actor).get_json()["items"]]


# -- payment confirmation ----------------------------------------------------------------------------
@pytest.mark.parametrize("target", [
    "trading.payments._locked_trade", "trading.payments._move", "trading.payments.post_entry",
    "exchange.ledger.engine._apply_balances", "exchange.ledger.engine.entry_hash", "exchange.identity.audit.record",
    COMMIT,
])
def test_payment_confirmation(api, app, parties, product, monkeypatch, target):
    vendor, buyer, op = parties
    trade_id = _trade(api, vendor, buyer, product)
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    with monkeypatch.context() as m:
        inject(m, target)
        _fails_cleanly(api.post(f"payments/{payment['id']}/confirm", op))
    assert api.get(f"payments/{payment['id']}", buyer).get_json()["status"] == "pending"
    assert _status(api, buyer, trade_id) == "awaiting_payment" and _entries(api, buyer, trade_id) == []
    assert_consistent(app)
    assert api.post(f"payments/{payment['id']}/confirm", op).status_code == 200
    assert _status(api, buyer, trade_id) == "escrowed" and _entries(api, buyer, trade_id) == ["payment"]
    assert_consistent(app)


# -- offer acceptance (the contract and its number) --------------------------------------------------
@pytest.mark.parametrize("target", [
    "trading.offers._decide", "trading.contracts.yearly_number", "trading.contracts.sha256_hex",
    "trading.contracts.create_from_offer", COMMIT,
])
def test_offer_acceptance(api, app, parties, product, monkeypatch, target):
    vendor, buyer, _ = parties
    first = api.post(f"offers/{bid(api, buyer, product)['id']}/accept", vendor).get_json()
    offer = bid(api, buyer, product)
    contracts = _contracts(app)
    with monkeypatch.context() as m:
        inject(m, target)
        _fails_cleanly(api.post(f"offers/{offer['id']}/accept", vendor))
    assert api.get(f"offers/{offer['id']}", buyer).get_json()["status"] == "pending"
    assert _contracts(app) == contracts
    r = api.post(f"offers/{offer['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    # The failed attempt gave its number back: numbers stay gapless.
    prefix, year, n = first["number"].rsplit("-", 2)
    assert r.get_json()["number"] == f"{prefix}-{year}-{int(n) + 1:06d}"
    assert_consistent(app)


# -- signing: the second signature concludes the contract and records the trade ----------------------
@pytest.mark.parametrize("target", [
    "exchange.signing.services.sign", "exchange.identity.audit.record", "trading.contracts._conclude",
    "trading.procurements.mark_contracted", "listings.services.record_fair_signing", COMMIT,
])
def test_signing(api, app, parties, product, monkeypatch, target):
    vendor, buyer, _ = parties
    fair, stall = live_fair(api, vendor, [product["id"]])
    proc = api.post("procurements", buyer, json={
        "title": "需求 demand", "description": "d", "category": "transport",
        "budget": {"max_amount": 5_000_000, "currency": "CNY"}, "deadline": "2099-01-01T00:00:00Z"}).get_json()
    offer = bid(api, buyer, product, procurement_id=proc["id"])
    contract = api.post(f"offers/{offer['id']}/accept", vendor).get_json()
    sign(api, buyer, contract["id"])
    on_site = {"on_site": True, "fair_id": fair["id"], "stall_code": stall["code"]}
    with monkeypatch.context() as m:
        inject(m, target)
        _fails_cleanly(api.post(f"contracts/{contract['id']}/signatures", vendor, json=on_site))
    after = api.get(f"contracts/{contract['id']}", buyer).get_json()
    assert after["status"] == "pending_signatures" and after["trade_id"] is None
    assert [s["org_id"] for s in after["signatures"]] == [buyer.org_id]
    assert api.get(f"procurements/{proc['id']}", buyer).get_json()["status"] == "open"
    assert api.get(f"fairs/{fair['id']}").get_json()["stats"]["contracts_signed_on_site"] == 0
    assert_consistent(app)
    signed = sign(api, vendor, contract["id"], **on_site)
    assert signed["status"] == "signed" and signed["trade_id"]
    assert api.get(f"procurements/{proc['id']}", buyer).get_json()["status"] == "contracted"
    assert api.get(f"fairs/{fair['id']}").get_json()["stats"]["contracts_signed_on_site"] == 1
    with app.app_context():
        assert db.session.get(Fair, fair["id"]) is not None
    assert_consistent(app)


# -- delivery acceptance: settlement -----------------------------------------------------------------
@pytest.mark.parametrize("target", [
    "trading.settlement._move", "trading.settlement.fee_for", "trading.settlement.post_entry",
    "exchange.ledger.engine._apply_balances", "exchange.ledger.engine.entry_hash", COMMIT,
])
def test_delivery_acceptance(api, app, parties, product, monkeypatch, target):
    vendor, buyer, op = parties
    trade_id = _trade(api, vendor, buyer, product)
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    api.post(f"payments/{payment['id']}/confirm", op)
    api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "s3://bucket/x.csv", "sha256": SHA})
    with monkeypatch.context() as m:
        inject(m, target)
        _fails_cleanly(api.post(f"trades/{trade_id}/acceptance", buyer))
    assert _status(api, buyer, trade_id) == "delivered" and _entries(api, buyer, trade_id) == ["payment"]
    assert_consistent(app)
    assert api.post(f"trades/{trade_id}/acceptance", buyer).status_code == 200
    assert _entries(api, buyer, trade_id) == ["payment", "settlement"]
    assert_consistent(app)


# -- dispute resolution: a refund and a settlement in one step -----------------------------------------
@pytest.mark.parametrize(("target", "on_call"), [
    ("trading.settlement.post_entry", 1),  # the refund entry
    ("trading.settlement.post_entry", 2),  # the settlement entry, after the refund was posted
    ("trading.settlement._settle", 1), ("exchange.identity.audit.record", 1), (COMMIT, 1),
])
def test_dispute_resolution(api, app, parties, product, monkeypatch, target, on_call):
    vendor, buyer, op = parties
    trade_id = _trade(api, vendor, buyer, product)
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    api.post(f"payments/{payment['id']}/confirm", op)
    api.post(f"trades/{trade_id}/disputes", buyer, json={"reason": "incomplete"})
    with monkeypatch.context() as m:
        inject(m, target, on_call=on_call)
        _fails_cleanly(api.post(f"trades/{trade_id}/resolution", op, json={"refund_amount": 250_000}))
    assert _status(api, buyer, trade_id) == "disputed" and _entries(api, buyer, trade_id) == ["payment"]
    assert_consistent(app)
    r = api.post(f"trades/{trade_id}/resolution", op, json={"refund_amount": 250_000})
    assert r.status_code == 200 and r.get_json()["refunded_amount"] == 250_000
    assert _entries(api, buyer, trade_id) == ["payment", "refund", "settlement"]
    assert_consistent(app)


# -- the sweep's automatic settlement -------------------------------------------------------------------
def test_a_fault_in_the_sweep_settles_nothing_half_and_spares_the_other_trades(api, app, parties, product,
                                                                               monkeypatch):
    vendor, buyer, op = parties
    trades = []
    for _ in range(2):
        trade_id = _trade(api, vendor, buyer, product)
        payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
        api.post(f"payments/{payment['id']}/confirm", op)
        api.post(f"trades/{trade_id}/delivery", vendor, json={"reference": "r", "sha256": SHA})
        trades.append(trade_id)
    app.config["ACCEPTANCE_DAYS"] = 1
    with app.app_context():
        from sqlalchemy import update

        from exchange.db import utcnow
        from trading.models import Trade

        db.session.execute(update(Trade).where(Trade.id.in_(trades)).values(delivered_at=utcnow().replace(year=2020),
                                                                         acceptance_started_at=utcnow().replace(year=2020)))
        db.session.commit()
    with monkeypatch.context() as m:
        inject(m, "trading.settlement.post_entry", on_call=2)  # the second trade's settlement
        result = app.test_cli_runner().invoke(args=["sweep"])
        # Each trade settles in its own transaction: the failing one is rolled back whole, the other
        # is kept, and the command fails.
        assert result.exit_code != 0, result.output
        assert "trading.auto_acceptance: error: " in result.output and "; 1 trades auto-settled" in result.output
    with app.app_context():
        db.session.remove()
    assert sorted(_status(api, buyer, t) for t in trades) == ["delivered", "settled"]
    assert_consistent(app)
    assert app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
    assert [_status(api, buyer, t) for t in trades] == ["settled", "settled"]
    assert_consistent(app)


def test_the_commit_fault_is_really_at_the_commit(api, app, parties, product, monkeypatch):
    """Guards the COMMIT cases: the view ran to its end and only the commit failed."""
    vendor, buyer, op = parties
    trade_id = _trade(api, vendor, buyer, product)
    payment = api.post(f"trades/{trade_id}/payments", buyer, json={"provider": "manual"}).get_json()
    with monkeypatch.context() as m:
        calls = inject(m, COMMIT)
        _fails_cleanly(api.post(f"payments/{payment['id']}/confirm", op))
        assert calls[0] == 1
    assert Session.commit.__name__ == "commit"
