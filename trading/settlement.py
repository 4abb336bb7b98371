"""The trade's money flow: payment into escrow, delivery, acceptance and settlement, disputes with
refunds, auto-acceptance, and payouts from a seller's payable balance.

Each step is one database transaction holding its state change and its ledger entry (posted through
`exchange.ledger.engine.post_entry`, the only writer of the ledger). Accounts (see the ledger's
purposes): the buyer's `buyer_funding`, the trade's `trade_escrow`, the seller's `seller_payable`,
the exchange's `exchange_fees`, and the provider's `payouts_clearing`. Calls to a payment provider
happen before any row is locked, with idempotency keys derived from the trade and the step, so a
retry never charges, refunds or transfers twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from exchange.db import utcnow
from exchange.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from exchange.events import outbox
from exchange.fields import Facts
from exchange.identity import audit
from exchange.identity import services as identity
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from exchange.ledger.engine import AccountRef, Posting, balance, post_entry
from exchange.ledger.models import EXCHANGE_OWNER, EntryKind
from exchange.money import fee_for
from exchange.payments import ProviderStatus, get_gateway, idempotency_key, record_event_once
from exchange.principal import Principal
from exchange.states import load_for_update, transition
from listings import services as listings
from trading.models import Dispute, Payment, Payout, Trade
from trading.states import (
    DISPUTE_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    PAYOUT_TRANSITIONS,
    TRADE_TRANSITIONS,
    DisputeStatus,
    PaymentStatus,
    PayoutStatus,
    TradeStatus,
)
from trading.trades import visible

T = TradeStatus
PS = PaymentStatus


def _escrow(trade: Trade) -> AccountRef:
    return AccountRef(trade.id, "trade_escrow", trade.currency)


def _funding(trade: Trade) -> AccountRef:
    return AccountRef(trade.buyer_org_id, "buyer_funding", trade.currency)


def _payable(org_id: str, currency: str) -> AccountRef:
    return AccountRef(org_id, "seller_payable", currency)


def _fees(currency: str) -> AccountRef:
    return AccountRef(EXCHANGE_OWNER, "exchange_fees", currency)


def _move(trade: Trade, target: TradeStatus, *, actor: Principal | None = None) -> None:
    """Every trade status change, with its webhook event to both parties (same transaction)."""
    transition(trade, TRADE_TRANSITIONS, target, actor=actor, what="Trade")
    trade.updated_at = utcnow()
    session = object_session(trade)
    outbox.emit(session, event_type=f"trade.{target}", org_ids=[trade.buyer_org_id, trade.seller_org_id],
                payload={"trade_id": trade.id, "status": str(target), "amount": trade.amount,
                         "currency": trade.currency, "refunded_amount": trade.refunded_amount})


# -- payment ----------------------------------------------------------------------------------------
def create_payment(session: Session, *, trade_id: str, provider: str, actor: Principal) -> Payment:
    """The buyer starts paying (`manual`: a bank transfer an operator confirms; `stripe`: a
    PaymentIntent confirmed by its webhook). Raises Forbidden, NotFound, Conflict (not awaiting
    payment, the seller suspended), 422."""
    trade = visible(session, trade_id, actor)
    if actor.org_id != trade.buyer_org_id:
        raise Forbidden("Only the buyer pays a trade.")
    actor.require_verified("payments")
    # No money into escrow for a seller who cannot deliver. Unlocked: no row lock is held across the
    # provider call below.
    identity.active_counterparty(session, org_id=trade.seller_org_id, role="seller", actor=actor, lock=False)
    if trade.status != T.AWAITING_PAYMENT:
        raise Conflict(f"This trade is {trade.status}; it is not awaiting payment.")
    gateway = get_gateway(provider)
    attempt = 1 + len(session.execute(select(Payment.id).where(Payment.trade_id == trade.id)).all())
    # The provider is called before any row is locked; the key makes a retried call a replay.
    result = gateway.create_payment(
        reference=trade.id, amount=trade.amount, currency=trade.currency,
        idempotency_key=idempotency_key(trade.id, f"payment-{attempt}"),
        metadata={"trade_id": trade.id, "contract_id": trade.contract_id},
    )
    trade = visible(session, trade_id, actor, lock=True)
    if trade.status != T.AWAITING_PAYMENT:
        raise Conflict(f"This trade is {trade.status}; it is not awaiting payment.")
    payment = Payment(trade_id=trade.id, provider=provider, status=PS.PENDING, amount=trade.amount,
                      currency=trade.currency, provider_ref=result.provider_ref,
                      client_secret=result.client_secret, created_by=actor.user_id)
    session.add(payment)
    session.flush()
    return payment


def shown_payment(session: Session, payment: Payment) -> Facts:
    """A payment with its trade's buyer: `PaymentSchema` shows the Stripe `client_secret` (which
    completes the payment) only to the buyer who pays, never to the seller or operators."""
    trade = session.get(Trade, payment.trade_id)
    return Facts(payment, buyer_org_id=trade.buyer_org_id if trade is not None else None)


def _escrow_payment(session: Session, payment: Payment, trade: Trade, actor: Principal | None) -> None:
    """The money arrived: payment succeeded, trade escrowed, ledger entry — one transaction."""
    if payment.status != PS.PENDING:
        raise Conflict(f"This payment is already {payment.status}.")
    if trade.status != T.AWAITING_PAYMENT:
        raise Conflict(f"This trade is already {trade.status}.")
    transition(payment, PAYMENT_TRANSITIONS, PS.SUCCEEDED, actor=actor, what="Payment")
    payment.confirmed_at = utcnow()
    payment.confirmed_by = actor.user_id if actor else None
    _move(trade, T.ESCROWED, actor=actor)
    trade.paid_amount = payment.amount
    trade.escrowed_at = utcnow()
    post_entry(session, kind=EntryKind.PAYMENT, trade_id=trade.id,
               postings=[Posting(_funding(trade), -payment.amount), Posting(_escrow(trade), payment.amount)],
               metadata={"payment_id": payment.id, "provider": payment.provider})
    _record_fair_sale(session, trade)
    session.flush()


def _record_fair_sale(session: Session, trade: Trade) -> None:
    """A trade made at a fair adds to the fair's volume what reached escrow, less its refunds."""
    if trade.fair_id is not None:
        listings.record_fair_sale(session, fair_id=trade.fair_id, ref=trade.id, currency=trade.currency,
                                  amount=trade.paid_amount - trade.refunded_amount)


def _locked_payment(session: Session, payment_id: str) -> Payment:
    payment = session.execute(select(Payment).where(Payment.id == payment_id).with_for_update()).scalar_one_or_none()
    if payment is None:
        raise NotFound("No such payment.")
    return payment


def _locked_trade(session: Session, trade_id: str) -> Trade:
    return session.execute(select(Trade).where(Trade.id == trade_id).with_for_update()).scalar_one()


def confirm_payment(session: Session, *, payment_id: str, actor: Principal) -> Payment:
    """Operator: the manual bank transfer arrived; the trade is escrowed. A repeat -> 409."""
    actor.require_operator()
    payment = _locked_payment(session, payment_id)
    if payment.provider != "manual":
        raise Conflict("Only manual payments are confirmed by operators; Stripe confirms its own.")
    trade = _locked_trade(session, payment.trade_id)
    _escrow_payment(session, payment, trade, actor)
    audit.record(session, actor, "payment.confirmed", "payment", payment.id, trade_id=trade.id,
                 amount=payment.amount, currency=payment.currency)
    return payment


def get_payment(session: Session, *, payment_id: str, principal: Principal) -> Payment:
    """A payment, for its trade's two parties and operators; anyone else gets the answer an unknown id
    gets (NotFound "No such payment.", never the trade's own 404)."""
    payment = session.get(Payment, payment_id)
    trade = session.get(Trade, payment.trade_id) if payment is not None else None
    if trade is None or not (principal.is_operator or principal.org_id in (trade.buyer_org_id, trade.seller_org_id)):
        raise NotFound("No such payment.")
    return payment


def apply_stripe_event(session: Session, *, payload: bytes, signature: str | None) -> dict[str, Any]:
    """A verified Stripe webhook: `payment_intent.succeeded` escrows its trade, once per event id.

    Never trusts the body for amounts: the amount and currency must equal the trade's. Events for
    unknown intents, repeated events and other types are acknowledged and change nothing.
    """
    event = get_gateway("stripe").parse_webhook(payload, signature)
    if not record_event_once(session, "stripe", event.id, event_type=event.type):
        return {"received": True, "applied": False, "reason": "duplicate event"}
    if event.type != "payment_intent.succeeded":
        return {"received": True, "applied": False, "reason": f"ignored event type {event.type}"}
    payment = session.execute(
        select(Payment).where(Payment.provider == "stripe", Payment.provider_ref == event.provider_ref)
        .with_for_update()
    ).scalar_one_or_none()
    if payment is None:
        return {"received": True, "applied": False, "reason": "unknown payment intent"}
    trade = _locked_trade(session, payment.trade_id)
    if payment.status != PS.PENDING or trade.status != T.AWAITING_PAYMENT:
        return {"received": True, "applied": False, "reason": f"payment already {payment.status}"}
    intent = event.raw["data"]["object"]
    # The event type alone is not the money: the object must be our PaymentIntent, succeeded, with the
    # trade's exact amount received (an integer) in the trade's currency.
    if intent.get("object") != "payment_intent" or intent.get("status") != "succeeded":
        return {"received": True, "applied": False, "reason": "the payment intent has not succeeded"}
    # Stripe always reports amount_received; a peer that omits it (localstripe) is held to `amount`.
    received = intent["amount_received"] if "amount_received" in intent else intent.get("amount")
    if type(received) is not int or received != trade.amount or (event.currency or "") != trade.currency:
        audit.record(session, None, "payment.amount_mismatch", "payment", payment.id, trade_id=trade.id,
                     event_id=event.id, event_amount=event.amount, event_currency=event.currency)
        return {"received": True, "applied": False, "reason": "amount or currency does not match the trade"}
    _escrow_payment(session, payment, trade, None)
    return {"received": True, "applied": True, "trade_id": trade.id}


def reconcile_stripe(session: Session, *, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Re-fetch pending Stripe payments whose webhook never came; escrow the ones that succeeded."""
    due = session.execute(
        select(Payment).where(Payment.provider == "stripe", Payment.status == PS.PENDING,
                              Payment.created_at <= utcnow() - older_than)
    ).scalars().all()
    applied = 0
    for payment in due:
        result = get_gateway("stripe").retrieve_payment(payment.provider_ref)
        if result.status != ProviderStatus.SUCCEEDED:
            continue
        payment = _locked_payment(session, payment.id)
        trade = _locked_trade(session, payment.trade_id)
        if payment.status == PS.PENDING and trade.status == T.AWAITING_PAYMENT and result.amount == trade.amount:
            _escrow_payment(session, payment, trade, None)
            applied += 1
    return applied


# -- delivery, acceptance, settlement ---------------------------------------------------------------
def deliver(session: Session, *, trade_id: str, reference: str, sha256: str, actor: Principal) -> Trade:
    """The seller delivers (a reference and the sha256 of what was delivered)."""
    trade = visible(session, trade_id, actor, lock=True)
    if actor.org_id != trade.seller_org_id:
        raise Forbidden("Only the seller delivers.")
    _move(trade, T.DELIVERED, actor=actor)
    trade.delivery_reference, trade.delivery_sha256, trade.delivered_at = reference, sha256, utcnow()
    session.flush()
    return trade


def _settle(session: Session, trade: Trade, *, how: str) -> None:
    """Release the escrow (minus refunds) to the seller's payable, the fee to the exchange."""
    settled = trade.paid_amount - trade.refunded_amount
    trade.fee = fee_for(settled, trade.fee_bps)
    # Set before posting: the entry's savepoint flushes the trade in one UPDATE.
    trade.settled_at = utcnow()
    trade.settlement = how
    if settled > 0:
        post_entry(session, kind=EntryKind.SETTLEMENT, trade_id=trade.id, postings=[
            Posting(_escrow(trade), -settled),
            Posting(_payable(trade.seller_org_id, trade.currency), settled - trade.fee),
            *([Posting(_fees(trade.currency), trade.fee)] if trade.fee else []),
        ], metadata={"settlement": how, "fee_bps": trade.fee_bps})


def accept(session: Session, *, trade_id: str, actor: Principal) -> Trade:
    """The buyer accepts the delivery: the trade settles."""
    trade = visible(session, trade_id, actor, lock=True)
    if actor.org_id != trade.buyer_org_id:
        raise Forbidden("Only the buyer accepts a delivery.")
    # The table also lets a dispute end settled, but only through an operator's resolution.
    if trade.status != T.DELIVERED:
        raise Conflict(f"This trade is {trade.status}; only a delivered trade can be accepted.")
    _move(trade, T.SETTLED, actor=actor)
    _settle(session, trade, how="accepted")
    session.flush()
    return trade


def sweep(session: Session, now: datetime | None = None) -> int:
    """Settle delivered trades the buyer neither accepted nor disputed within the acceptance period."""
    now = now or utcnow()
    days = int(current_app.config["ACCEPTANCE_DAYS"])
    ids = list(session.execute(
        select(Trade.id).where(Trade.status == T.DELIVERED, Trade.delivered_at <= now - timedelta(days=days))
    ).scalars())
    for trade_id in ids:
        trade = _locked_trade(session, trade_id)
        if trade.status == T.DELIVERED:
            _move(trade, T.SETTLED)
            _settle(session, trade, how="auto_accepted")
    session.flush()
    return len(ids)


# -- disputes ---------------------------------------------------------------------------------------
def open_dispute(session: Session, *, trade_id: str, reason: str, actor: Principal) -> Dispute:
    """The buyer disputes an escrowed or delivered trade; settlement waits for an operator."""
    trade = visible(session, trade_id, actor, lock=True)
    if actor.org_id != trade.buyer_org_id:
        raise Forbidden("Only the buyer disputes a trade.")
    _move(trade, T.DISPUTED, actor=actor)
    dispute = Dispute(trade_id=trade.id, opened_by=actor.user_id, reason=reason, status=DisputeStatus.OPEN)
    session.add(dispute)
    session.flush()
    return dispute


def resolve(session: Session, *, trade_id: str, refund_amount: int, comment: str | None,
            actor: Principal) -> Trade:
    """Operator: refund part or all (never more than was paid) and settle the rest.

    A full refund ends `refunded`; a partial one `settled` with `refunded_amount`.
    """
    actor.require_operator()
    trade = visible(session, trade_id, actor)
    if trade.status != T.DISPUTED:
        raise Conflict(f"This trade is {trade.status}, not disputed.")
    if refund_amount > trade.paid_amount - trade.refunded_amount:
        raise field_error("refund_amount", f"cannot exceed what was paid ({trade.paid_amount - trade.refunded_amount})")
    payment = session.execute(
        select(Payment).where(Payment.trade_id == trade.id, Payment.status == PS.SUCCEEDED)
    ).scalar_one_or_none()
    if refund_amount and payment is not None and payment.provider != "manual":
        get_gateway(payment.provider).refund(provider_ref=payment.provider_ref, amount=refund_amount,
                                             idempotency_key=idempotency_key(trade.id, "refund"))
    trade = _locked_trade(session, trade_id)
    if trade.status != T.DISPUTED:
        raise Conflict(f"This trade is {trade.status}, not disputed.")
    if refund_amount:
        post_entry(session, kind=EntryKind.REFUND, trade_id=trade.id,
                   postings=[Posting(_escrow(trade), -refund_amount), Posting(_funding(trade), refund_amount)],
                   metadata={"reason": "dispute resolution"})
        trade.refunded_amount += refund_amount
        _record_fair_sale(session, trade)
    if trade.refunded_amount >= trade.paid_amount:
        _move(trade, T.REFUNDED, actor=actor)
        trade.fee = 0
        trade.settled_at, trade.settlement = utcnow(), "refunded"
    else:
        _move(trade, T.SETTLED, actor=actor)
        _settle(session, trade, how="dispute_resolved")
    dispute = session.execute(
        select(Dispute).where(Dispute.trade_id == trade.id, Dispute.status == DisputeStatus.OPEN).with_for_update()
    ).scalar_one_or_none()
    if dispute is not None:
        transition(dispute, DISPUTE_TRANSITIONS, DisputeStatus.RESOLVED, actor=actor, what="Dispute")
        dispute.refund_amount = refund_amount
        dispute.resolved_by, dispute.resolved_at, dispute.comment = actor.user_id, utcnow(), comment
    audit.record(session, actor, "trade.resolved", "trade", trade.id, refund_amount=refund_amount,
                 status=trade.status)
    session.flush()
    return trade


# -- payouts ----------------------------------------------------------------------------------------
def payout(session: Session, *, org_id: str, currency: str, amount: int, provider: str,
           actor: Principal) -> Payout:
    """Operator: pay a seller out of its payable balance (never more: 422, even under racing requests).
    A suspended organization is paid nothing until it is reinstated (409)."""
    actor.require_operator()
    org = session.get(Organization, org_id)
    if org is None:
        raise field_error("org_id", "no such organization")
    # Locked FOR KEY SHARE to the end: a payout and a suspension of its payee serialize.
    identity.active_counterparty(session, org_id=org.id, role="payee", actor=actor)
    if provider == "stripe" and not org.stripe_account_id:
        raise Conflict("This organization has no Stripe account for payouts (stripe_account_id).")
    available = balance(session, owner_id=org.id, purpose="seller_payable", currency=currency)
    if amount > available:
        raise ValidationFailed(f"The payable balance is {available}; cannot pay out {amount}.",
                               errors={"amount": [f"exceeds the payable balance ({available})"]})
    record = Payout(org_id=org.id, currency=currency, amount=amount, provider=provider,
                    status=PayoutStatus.PENDING, created_by=actor.user_id)
    session.add(record)
    session.flush()
    # The ledger's conditional balance update refuses an overdraft even when two payouts race.
    entry = post_entry(session, kind=EntryKind.PAYOUT, postings=[
        Posting(_payable(org.id, currency), -amount),
        Posting(AccountRef(provider, "payouts_clearing", currency), amount),
    ], metadata={"payout_id": record.id, "org_id": org.id})
    record.entry_id = entry.id
    # A Stripe Transfer is made after this transaction commits (send_transfers), never under its
    # locks: the payout stays pending until then. A manual one is paid now.
    if provider != "stripe":
        transition(record, PAYOUT_TRANSITIONS, PayoutStatus.PAID, actor=actor, what="Payout")
        outbox.emit(session, event_type="payout.sent", org_ids=[org.id],
                    payload={"payout_id": record.id, "amount": amount, "currency": currency, "provider": provider})
    audit.record(session, actor, "payout.created", "payout", record.id, org_id=org.id, amount=amount,
                 currency=currency, provider=provider)
    session.flush()
    return record


def send_transfers(session: Session) -> int:
    """Make the Stripe Transfers of committed pending payouts (idempotent per payout), except to a
    suspended organization; returns how many."""
    pending = session.execute(
        select(Payout).where(Payout.provider == "stripe", Payout.status == PayoutStatus.PENDING)
        .order_by(Payout.created_at)
    ).scalars().all()
    sent = 0
    for record in pending:
        org = session.get(Organization, record.org_id)
        if org.status == OrgStatus.SUSPENDED:
            continue  # held, still pending, until the organization is reinstated
        result = get_gateway("stripe").transfer(
            destination_account=org.stripe_account_id, amount=record.amount, currency=record.currency,
            idempotency_key=idempotency_key(record.id, "transfer"), metadata={"payout_id": record.id})
        # Locked after the provider call; a payout another run already marked paid is left alone
        # (the idempotency key made this Transfer a replay of that one).
        record = load_for_update(session, Payout, record.id)
        if record.status != PayoutStatus.PENDING:
            continue
        record.provider_ref = result.provider_ref
        transition(record, PAYOUT_TRANSITIONS, PayoutStatus.PAID, actor=None, what="Payout")
        outbox.emit(session, event_type="payout.sent", org_ids=[record.org_id],
                    payload={"payout_id": record.id, "amount": record.amount, "currency": record.currency,
                             "provider": "stripe", "provider_ref": result.provider_ref})
        audit.record(session, None, "payout.sent", "payout", record.id, provider_ref=result.provider_ref)
        sent += 1
    session.flush()
    return sent


def can_read_entries(session: Session, principal: Principal, trade_id: str) -> bool:
    """Ledger entries of a trade are readable by its two parties."""
    trade = session.get(Trade, trade_id)
    return trade is not None and principal.org_id in (trade.buyer_org_id, trade.seller_org_id)


