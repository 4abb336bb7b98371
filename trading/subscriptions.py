"""Subscriptions (API.md, Subscriptions): a contract on a `subscription` product makes one trade per
calendar period, each paid, escrowed, delivered and settled like any trade, at the contract's price
for its whole life.

The `subscriptions` row of a contract holds its renewal state and is the lock every change of it
takes first — then a pending payment, then its trade, the order a confirmation locks those two:
renewal, lapse, cancellation and end serialize on it, so two sweeps renewing at once make one trade
per period, and a cancellation racing a renewal has a serial outcome. The unique (contract, period)
of trades is the backstop. The steps that also move money or payments (a cancellation's unpaid
trades, a revocation's refunds) are passed in by `trading.payments`, which holds them.

Time-based steps run in the sweep (one subscription or trade per transaction, bounded batches):

* renewal at `renews_at` (the latest period's end minus DATAFAIR_RENEWAL_NOTICE_DAYS): the re-checks
  (the certificate of the version bought neither suspended nor revoked, both organizations verified,
  the deal lawful across the border now) then the next period's trade, `awaiting_payment`; a failed
  check creates nothing and the subscription ends `lapsed` with the reason;
* a period not escrowed by its start + DATAFAIR_GRACE_DAYS: its trade `cancelled`, the subscription
  `lapsed` (delivery suspends the entitlement from the period's start, reason `period_unpaid`);
* the end of the last period without auto-renewal: `ended`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.orm import Session

from certification import certificates, whitelist
from certification.states import CertificateStatus
from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, field_error
from exchange.events import outbox
from exchange.fields import iso_z
from exchange.identity import audit
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from exchange.principal import Principal
from exchange.states import load_for_update, transition
from listings import services as listings
from trading import periods, trades
from trading.models import Contract, Subscription, Trade
from trading.states import SUBSCRIPTION_TRANSITIONS, SubscriptionStatus, TradeStatus

S = SubscriptionStatus
T = TradeStatus
SUBSCRIPTION = "subscription"
MAX_PERIODS = 36
# A period's trade holds money (or held it) in these statuses: it counts towards the entitlement's end.
PAID = (T.ESCROWED, T.DELIVERED, T.SETTLED, T.DISPUTED)
EVENT_TYPES = frozenset({
    "subscription.renewal_due",   # the next period's trade awaits payment
    "subscription.lapsed",        # a re-check failed at renewal, or a period was not paid in time
    "subscription.cancelled",     # the buyer cancelled: the paid periods run to their end
    "subscription.ended",         # the last period ended, or access was revoked
})


# -- terms -----------------------------------------------------------------------------------------
def check_terms(revision: Any, terms: dict[str, Any]) -> dict[str, Any]:
    """The terms of a deal on `revision`, completed for a subscription (`periods` 1 by default,
    `auto_renew` false by default, both written into the terms so the contract states them); 422
    naming the field where they do not fit the price model (API.md, Subscriptions)."""
    subscription = revision.price.get("model") == SUBSCRIPTION
    if not subscription:
        for name in ("periods", "auto_renew"):
            if terms.get(name) is not None:
                raise field_error(f"terms.{name}", "only for subscription products")
        if terms.get("duration_days") is None:
            raise field_error("terms.duration_days", "required (the days of access the deal buys)")
        return terms
    done = dict(terms)
    done["periods"] = int(terms.get("periods") or 1)
    done["auto_renew"] = bool(terms.get("auto_renew") or False)
    return done


def is_subscription(session: Session, contract: Contract) -> bool:
    revision = listings.get_version(session, product_id=contract.product_id, version=contract.product_version)
    return revision.price.get("model") == SUBSCRIPTION and "periods" in (contract.terms or {})


def _unit(session: Session, contract: Contract) -> str:
    revision = listings.get_version(session, product_id=contract.product_id, version=contract.product_version)
    return str(revision.price.get("period") or "month")


# -- the start: the contract's second signature ---------------------------------------------------------
def first_period(session: Session, contract: Contract) -> periods.Period | None:
    """Period 1 of a subscription contract being signed (it starts at the second signature)."""
    if not is_subscription(session, contract):
        return None
    return periods.period(contract.signed_at, _unit(session, contract), 1)


def start(session: Session, contract: Contract, trade: Trade) -> Subscription | None:
    """The subscription of a contract just signed, its period 1 trade being `trade` (same transaction)."""
    if trade.period_start is None:
        return None
    terms = contract.terms
    sub = Subscription(contract_id=contract.id, status=S.ACTIVE, unit=_unit(session, contract),
                       anchor=contract.signed_at, periods=int(terms["periods"]),
                       auto_renew=bool(terms.get("auto_renew")), latest_period=1, ends_at=trade.period_end)
    sub.renews_at = _next_renewal(sub)
    session.add(sub)
    session.flush()
    return sub


def _next_renewal(sub: Subscription) -> datetime | None:
    """When the next period's trade is to be created: the latest period's end minus the notice, if
    the contract goes on beyond it (within `periods`, or beyond them with auto-renewal)."""
    if sub.latest_period >= sub.periods and not sub.auto_renew:
        return None
    return sub.ends_at - timedelta(days=int(current_app.config["RENEWAL_NOTICE_DAYS"]))


# -- reads -----------------------------------------------------------------------------------------------
def get(session: Session, contract_id: str) -> Subscription | None:
    return session.get(Subscription, contract_id)


def not_bought() -> Any:
    """A period trade refunded before its period began: that period was never bought."""
    return and_(Trade.status == T.REFUNDED, Trade.settled_at < Trade.period_start)


def current_trade(session: Session, contract_id: str, now: datetime | None = None) -> Trade | None:
    """The trade of the period running at `now` (the latest that has begun; a period refunded before
    it began does not count), or the contract's only trade when it is not a subscription."""
    now = now or utcnow()
    return session.execute(
        select(Trade).where(Trade.contract_id == contract_id,
                            or_(Trade.period_start.is_(None), Trade.period_start <= now), not_(not_bought()))
        .order_by(Trade.period_index.desc()).limit(1)).scalar_one_or_none()


def paid_through(session: Session, contract_id: str) -> datetime | None:
    """The end of the latest period whose trade holds (or held) money: the entitlement's `ends_at`."""
    return session.execute(select(func.max(Trade.period_end)).where(
        Trade.contract_id == contract_id, Trade.status.in_([str(s) for s in PAID]))).scalar()


def unpaid_started(session: Session, contract_id: str, now: datetime | None = None) -> Trade | None:
    """A period that has begun without being escrowed (its trade still awaits payment)."""
    now = now or utcnow()
    return session.execute(select(Trade).where(
        Trade.contract_id == contract_id, Trade.status == T.AWAITING_PAYMENT, Trade.period_start <= now)
        .order_by(Trade.period_index).limit(1)).scalar_one_or_none()


def current_index(sub: Subscription, now: datetime) -> int:
    return min(periods.index_at(sub.anchor, sub.unit, now), sub.latest_period)


def shown(session: Session, sub: Subscription, period_trades: list[Trade],
          now: datetime | None = None) -> dict[str, Any]:
    """`subscription` of `GET /contracts/{id}` (API.md) and the periods so far, each with its trade."""
    now = now or utcnow()
    return {
        "status": sub.status, "current_period": current_index(sub, now),
        "renews_at": sub.renews_at if sub.status == S.ACTIVE else None, "auto_renew": sub.auto_renew,
        "reason": sub.reason, "periods": sub.periods, "unit": sub.unit, "ends_at": sub.ends_at,
        "history": [{"index": t.period_index, "start": t.period_start, "end": t.period_end, "trade_id": t.id,
                     "status": t.status} for t in period_trades],
    }


def shown_many(session: Session, contracts: list[Contract]) -> dict[str, dict[str, Any]]:
    """`shown` of the subscriptions among `contracts`, in two queries whatever their number."""
    ids = [c.id for c in contracts]
    if not ids:
        return {}
    subs = list(session.execute(select(Subscription).where(Subscription.contract_id.in_(ids))).scalars())
    if not subs:
        return {}
    by_contract: dict[str, list[Trade]] = {s.contract_id: [] for s in subs}
    for trade in session.execute(select(Trade).where(Trade.contract_id.in_(list(by_contract)))
                                 .order_by(Trade.contract_id, Trade.period_index)).scalars():
        by_contract[trade.contract_id].append(trade)
    now = utcnow()
    return {s.contract_id: shown(session, s, by_contract[s.contract_id], now) for s in subs}


# -- changes of status ------------------------------------------------------------------------------------
def _emit(session: Session, sub: Subscription, contract: Contract, event: str, **extra: Any) -> None:
    outbox.emit(session, event_type=f"subscription.{event}", org_ids=[contract.buyer_org_id, contract.seller_org_id],
                payload={"contract_id": contract.id, "number": contract.number, "status": sub.status,
                         "reason": sub.reason, **extra})


def _finish(session: Session, sub: Subscription, target: SubscriptionStatus, reason: str, *,
            actor: Principal | None = None) -> None:
    contract = session.get(Contract, sub.contract_id)
    transition(sub, SUBSCRIPTION_TRANSITIONS, target, actor=actor, what="Subscription")
    sub.reason = reason
    sub.renews_at = None
    sub.ended_at = utcnow()
    _emit(session, sub, contract, str(target))
    session.flush()


def renewal_refusal(session: Session, contract: Contract, now: datetime) -> str | None:
    """Why the next period may not be sold now (API.md's re-checks), or None."""
    cert = certificates.get(session, contract.certificate_number)
    status = certificates.effective_status(cert, now) if cert is not None else CertificateStatus.REVOKED
    if status in (CertificateStatus.SUSPENDED, CertificateStatus.REVOKED):
        return f"certificate {contract.certificate_number} is {status}"
    for org_id, role in ((contract.buyer_org_id, "buyer"), (contract.seller_org_id, "seller")):
        org = session.get(Organization, org_id)
        if org.status != OrgStatus.VERIFIED:
            return f"the {role} organization is {org.status}"
    revision = listings.get_version(session, product_id=contract.product_id, version=contract.product_version)
    buyer = session.get(Organization, contract.buyer_org_id)
    decision = whitelist.check_transfer(session, product=revision, buyer_org=buyer, now=now)
    if not decision.allowed:
        return f"the deal is no longer lawful across the border ({decision.rule})"
    return None


def renewal_due(session: Session, now: datetime, limit: int) -> list[str]:
    """Active subscriptions whose next period's trade is due, the longest due first."""
    return list(session.execute(
        select(Subscription.contract_id).where(Subscription.status == S.ACTIVE, Subscription.renews_at <= now)
        .order_by(Subscription.renews_at, Subscription.contract_id).limit(limit)).scalars())


def renew(session: Session, contract_id: str, now: datetime) -> bool:
    """One renewal (a sweep item): lock the subscription, re-check that it is due, then either create
    the next period's trade or end the subscription `lapsed` with the failed check."""
    sub = load_for_update(session, Subscription, contract_id)
    if sub is None or sub.status != S.ACTIVE or sub.renews_at is None or sub.renews_at > now:
        return False
    grace = timedelta(days=int(current_app.config["GRACE_DAYS"]))
    if unpaid_started(session, contract_id, now - grace) is not None:
        # A period already unpaid past its grace: the subscription lapses (the unpaid-trades sweep,
        # right after this one), it does not renew.
        return False
    contract = session.get(Contract, contract_id)
    refused = renewal_refusal(session, contract, now)
    if refused is not None:
        _finish(session, sub, S.LAPSED, f"renewal of period {sub.latest_period + 1} refused: {refused}")
        return True
    nxt = periods.period(sub.anchor, sub.unit, sub.latest_period + 1)
    trade = trades.new_trade(session, contract, fee_bps=int(current_app.config["FEE_BPS"]), period=nxt)
    sub.latest_period, sub.ends_at = nxt.index, nxt.end
    sub.renews_at = _next_renewal(sub)
    _emit(session, sub, contract, "renewal_due", trade_id=trade.id, amount=trade.amount, currency=trade.currency,
          period={"index": nxt.index, "start": iso_z(nxt.start), "end": iso_z(nxt.end)},
          pay_by=iso_z(nxt.start + grace))
    session.flush()
    return True


def end_due(session: Session, now: datetime, limit: int) -> list[str]:
    """Active subscriptions past the end of their last period with no renewal ahead."""
    return list(session.execute(
        select(Subscription.contract_id).where(Subscription.status == S.ACTIVE, Subscription.renews_at.is_(None),
                                               Subscription.ends_at <= now)
        .order_by(Subscription.ends_at, Subscription.contract_id).limit(limit)).scalars())


def end(session: Session, contract_id: str, now: datetime) -> bool:
    """The last period ended (a sweep item): `ended`."""
    sub = load_for_update(session, Subscription, contract_id)
    if sub is None or sub.status != S.ACTIVE or sub.renews_at is not None or sub.ends_at > now:
        return False
    _finish(session, sub, S.ENDED, f"the last period ({sub.latest_period}) ended")
    return True


def lock_of_trade(session: Session, trade_id: str) -> Subscription | None:
    """Lock the subscription a trade belongs to (None for any other trade), before the trade itself:
    the order every subscription change takes."""
    contract_id = session.execute(select(Trade.contract_id).where(Trade.id == trade_id)).scalar_one_or_none()
    return load_for_update(session, Subscription, contract_id) if contract_id is not None else None


def on_period_cancelled(session: Session, sub: Subscription | None, trade: Trade, reason: str, *,
                        cancel_unpaid: Any) -> None:
    """A period's trade was cancelled unpaid (the grace passed, an operator, the payment deadline):
    an active subscription lapses (`sub` is locked by the caller, before the trade), and any later
    period's trade still awaiting payment is cancelled with it (`cancel_unpaid(trade_id, reason)`)."""
    if sub is None or sub.status != S.ACTIVE or trade.period_start is None:
        return
    _finish(session, sub, S.LAPSED, f"period {trade.period_index} {reason}")
    for trade_id in session.execute(select(Trade.id).where(Trade.contract_id == sub.contract_id,
                                                           Trade.status == T.AWAITING_PAYMENT)
                                    .order_by(Trade.period_index)).scalars():
        cancel_unpaid(trade_id, f"the subscription lapsed: period {trade.period_index} {reason}")


def cancel(session: Session, *, contract: Contract, actor: Principal, cancel_unpaid: Any) -> Subscription:
    """The buyer cancels: no period after the latest escrowed one; an unpaid next period's trade is
    cancelled (`cancel_unpaid(trade_id, reason)`, trading.payments: its pending payment first); the
    paid periods run to their end. Conflict unless the contract is an active subscription."""
    if actor.org_id != contract.buyer_org_id:
        raise Forbidden("Only the buyer cancels its subscription.",
                        next_step="sign in as a member of the buying organization")
    actor.require_verified("subscription cancellations")
    sub = load_for_update(session, Subscription, contract.id)
    if sub is None:
        raise Conflict(f"Contract {contract.number} is not a subscription; nothing renews to cancel.",
                       next_step="none: a contract that is not a subscription has nothing to cancel once signed")
    if sub.status != S.ACTIVE:
        raise Conflict(f"This subscription is already {sub.status}"
                       + (f" ({sub.reason})" if sub.reason else "") + "; only an active one can be cancelled.",
                       next_step=SUBSCRIPTION_TRANSITIONS.next_step(sub.status))
    unpaid = list(session.execute(select(Trade.id).where(Trade.contract_id == contract.id,
                                                         Trade.status == T.AWAITING_PAYMENT)
                                  .order_by(Trade.period_index)).scalars())
    for trade_id in unpaid:
        cancel_unpaid(trade_id, "cancelled with the subscription by the buyer")
    _finish(session, sub, S.CANCELLED, "cancelled by the buyer", actor=actor)
    audit.record(session, actor, "subscription.cancelled", "contract", contract.id, unpaid_cancelled=len(unpaid))
    return sub


def end_after_revocation(session: Session, *, contract_id: str, reason: str, cancel_unpaid: Any,
                         refund_unstarted: Any) -> bool:
    """Access was revoked (the running period refunded, a resolution ending access, the certificate
    revoked): the subscription ends `ended` with the reason; its unpaid periods are cancelled and
    its paid periods not yet begun refunded (trading.payments / settlement do each, passed in)."""
    sub = load_for_update(session, Subscription, contract_id)
    if sub is None or sub.status == S.ENDED:
        return False
    now = utcnow()
    for trade_id, status in session.execute(
            select(Trade.id, Trade.status).where(Trade.contract_id == contract_id,
                                                 Trade.status.in_([T.AWAITING_PAYMENT, T.ESCROWED]),
                                                 Trade.period_start > now)
            .order_by(Trade.period_index)).all():
        if status == T.AWAITING_PAYMENT:
            cancel_unpaid(trade_id, f"access revoked: {reason}")
        else:
            refund_unstarted(trade_id, f"access revoked: {reason}")
    # An unpaid period that has begun is cancelled too (nothing was bought for it).
    for trade_id in session.execute(select(Trade.id).where(Trade.contract_id == contract_id,
                                                           Trade.status == T.AWAITING_PAYMENT)).scalars():
        cancel_unpaid(trade_id, f"access revoked: {reason}")
    _finish(session, sub, S.ENDED, f"access revoked: {reason}")
    return True


def end_after_unstarted_refund(session: Session, sub: Subscription | None, trade: Trade) -> None:
    """A period refunded in full before it began (a dispute's resolution): that period was never
    bought, so the subscription ends there (`sub` locked by the caller before the trade)."""
    if sub is None or sub.status == S.ENDED or trade.period_start is None:
        return
    if trade.status == T.REFUNDED and trade.settled_at is not None and trade.settled_at < trade.period_start:
        _finish(session, sub, S.ENDED, f"period {trade.period_index} refunded before it began")
