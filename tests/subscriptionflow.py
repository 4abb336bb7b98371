"""Helpers to drive subscriptions through the real API on the domain clock: a subscription product
certified and sold, periods paid, the clock moved (`NOW_OFFSET_S`, as `DATAFAIR_NOW_OFFSET_S` sets
it) and the sweep run as cron runs it. No sleeps: time moves by configuration."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from exchange.db import db, wallclock
from exchange.events.outbox import OutboxEvent
from tests.deliveryflow import pay, sweep
from tests.factories import Actor, ApiHelper
from tests.tradeflow import contract_for, sign

MONTH = {"model": "subscription", "amount": 880_000, "currency": "HKD", "period": "month"}
YEAR = {"model": "subscription", "amount": 9_600_000, "currency": "CNY", "period": "year"}


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def sub_terms(product: dict[str, Any], periods: int | None = 3, auto_renew: bool | None = False,
              **kw: Any) -> dict[str, Any]:
    terms = {"scope": "commercial", "delivery_mode": product["delivery_mode"], **kw}
    if periods is not None:
        terms["periods"] = periods
    if auto_renew is not None:
        terms["auto_renew"] = auto_renew
    return terms


def subscribe(api: ApiHelper, vendor: Actor | None = None, buyer: Actor | None = None, *, periods: int = 3,
              auto_renew: bool = False, price: dict[str, Any] | None = None, paid: bool = True,
              **product: Any) -> dict[str, Any]:
    """A subscription product certified, bid on for `periods` periods, accepted and signed by both
    (period 1 starts now); period 1 paid unless `paid=False`. Returns the parties, the contract and
    its first trade."""
    from tests.certflow import certify

    vendor, buyer = vendor or api.vendor(), buyer or api.enterprise()
    listed = certify(api, vendor, **{"delivery_mode": "file", "price": price or MONTH, **product})
    body = {"product_id": listed["id"], "price": {"amount": listed["price"]["amount"],
                                                    "currency": listed["price"]["currency"]},
            "terms": sub_terms(listed, periods, auto_renew)}
    r = api.post("offers", buyer, json=body)
    assert r.status_code == 201, r.get_json()
    r = api.post(f"offers/{r.get_json()['id']}/accept", vendor)
    assert r.status_code == 201, r.get_json()
    contract = r.get_json()
    sign(api, buyer, contract["id"])
    contract = sign(api, vendor, contract["id"])
    trade = api.get(f"trades/{contract['trade_id']}", buyer).get_json()
    if paid:
        trade = pay(api, buyer, trade["id"])
    return {"vendor": vendor, "buyer": buyer, "product": listed, "contract": contract, "trade": trade}


def contract(api: ApiHelper, actor: Actor, contract_id: str) -> dict[str, Any]:
    r = api.get(f"contracts/{contract_id}", actor)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def period_trades(api: ApiHelper, actor: Actor, contract_id: str) -> list[dict[str, Any]]:
    r = api.get(f"trades?contract_id={contract_id}&per_page=100", actor)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def set_clock(app: Any, at: datetime) -> None:
    """Move the domain clock so that now is `at` (to the second; the wall clock goes on, so a test
    that must stay before a boundary sets the clock a few minutes before it)."""
    app.config["NOW_OFFSET_S"] = int((at - wallclock()).total_seconds())


def advance(app: Any, **delta: float) -> None:
    app.config["NOW_OFFSET_S"] = int(app.config.get("NOW_OFFSET_S") or 0) + int(timedelta(**delta).total_seconds())


def at_and_sweep(app: Any, at: datetime) -> str:
    """The clock at `at`, then one sweep (as cron would run it then)."""
    set_clock(app, at)
    with app.app_context():
        return sweep(app)


def events(app: Any, contract_id: str, *types: str) -> list[OutboxEvent]:
    with app.app_context():
        rows = list(db.session.execute(select(OutboxEvent).where(OutboxEvent.event_type.in_(types))
                                       .order_by(OutboxEvent.created_at, OutboxEvent.id)).scalars())
        db.session.expunge_all()
    return [e for e in rows if e.payload.get("contract_id") == contract_id]


__all__ = ["MONTH", "YEAR", "advance", "at_and_sweep", "contract", "contract_for", "events", "parse",
           "pay", "period_trades", "set_clock", "sub_terms", "subscribe"]
