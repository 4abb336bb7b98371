"""Payments of trades: one in flight per trade, the buyer's cancel, the operator's confirmation of a
bank transfer, Stripe's webhook, duplicate successes refunded, and the Stripe reconciliation job.

Every call to a payment provider goes through `exchange.payments.run_provider_call`: the intent (a
`provider_calls` row with its idempotency key) is committed in a short transaction, the call is made
with no transaction open, and the result is applied in a new short transaction (row locked, state
re-checked). A request that calls a provider therefore commits more than once; a crash between the
steps leaves a `started` call that `reconcile_stripe` makes again under the same key (a replay).
The money itself moves as in `trading.settlement`: the escrow entry is posted with the payment's
success, in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app, has_request_context
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certification import certificates
from certification.models import Certificate
from certification.states import CertificateStatus
from exchange import hooks
from exchange.db import after_transaction, utcnow
from exchange.errors import Conflict, Forbidden, NotFound
from exchange.fields import Facts
from exchange.identity import audit
from exchange.identity import services as identity
from exchange.ledger.engine import Posting, post_entry
from exchange.ledger.models import EntryKind
from exchange.payments import (
    PaymentResult,
    ProviderError,
    ProviderStatus,
    ProviderUnreachable,
    abandoned_calls,
    begin_call,
    find_call,
    get_gateway,
    outside_transaction,
    record_event_once,
    run_provider_call,
)
from exchange.payments.models import ProviderCall
from exchange.principal import Principal
from exchange.states import transition
from trading import rules, settlement, subscriptions
from trading.models import Contract, Payment, Trade
from trading.settlement import (
    BATCH,
    _escrow,
    _funding,
    _locked_payment,
    _locked_trade,
    _move,
    _per_item,
    _record_fair_sale,
)
from trading.states import PAYMENT_TRANSITIONS, TRADE_TRANSITIONS, PaymentStatus, TradeStatus
from trading.trades import visible

T = TradeStatus
PS = PaymentStatus
log = logging.getLogger("datafair.payments")
DUPLICATE = "duplicate"


def _pending_payment_of(session: Session, trade_id: str) -> Payment | None:
    return session.execute(
        select(Payment).where(Payment.trade_id == trade_id, Payment.status == PS.PENDING)
    ).scalars().first()


def _refuse_second_payment(session: Session, trade_id: str) -> None:
    pending = _pending_payment_of(session, trade_id)
    if pending is not None:
        raise Conflict(f"Payment {pending.id} of this trade is still pending; a trade has one payment in "
                       f"flight. Cancel it first (POST /api/v1/payments/{pending.id}/cancel), then pay again.",
                       next_step="cancel the pending payment first (POST /api/v1/payments/{id}/cancel), then pay "
                                 "again")


def _refuse_uncertified(session: Session, trade: Trade) -> None:
    """No money into escrow while the certificate the contract was signed under is suspended or
    revoked (409); a superseded or expired one still covers the revision that was bought."""
    contract = session.get(Contract, trade.contract_id)
    cert = session.get(Certificate, contract.certificate_number)
    status = certificates.effective_status(cert) if cert is not None else CertificateStatus.REVOKED
    if status in (CertificateStatus.SUSPENDED, CertificateStatus.REVOKED):
        raise Conflict(f"The product's certificate {contract.certificate_number} is {status}; "
                       "this trade cannot be paid until it is reinstated.",
                       next_step="an operator must reinstate the product's certificate first")


def _require_payer(trade: Trade, actor: Principal) -> None:
    if actor.org_id != trade.buyer_org_id:
        raise Forbidden("Only the buyer pays a trade.", next_step="sign in as a member of the buying organization")
    actor.require_verified("payments")


def check_may_pay(session: Session, actor: Principal, *, trade_id: str, **_ids: Any) -> None:
    """Whether the actor may pay the trade (its verified buyer): Forbidden, NotFound. Reads only."""
    _require_payer(visible(session, trade_id, actor), actor)


def create_payment(session: Session, *, trade_id: str, provider: str, actor: Principal) -> Payment:
    """The buyer starts paying (`manual`: a bank transfer an operator confirms; `stripe`: a
    PaymentIntent confirmed by its webhook). Raises Forbidden, NotFound, Conflict (409: not awaiting
    payment, another payment still pending, the seller suspended, the certificate suspended or revoked),
    422, and the provider's 502/503.

    Commits twice: the pending payment and the call's intent first (so the one-pending rule holds
    before the provider is asked), then the provider's answer once the call returns.
    """
    trade = visible(session, trade_id, actor, lock=True)
    _require_payer(trade, actor)
    # No money into escrow for a seller who cannot deliver; the row lock (released when the intent
    # commits, before the provider call) serializes this with a suspension of the seller.
    identity.active_counterparty(session, org_id=trade.seller_org_id, role="seller", actor=actor)
    if trade.status != T.AWAITING_PAYMENT:
        raise Conflict(f"This trade is {trade.status}; it is not awaiting payment.",
                       next_step=TRADE_TRANSITIONS.next_step(trade.status))
    _refuse_uncertified(session, trade)
    gateway = get_gateway(provider)
    _refuse_second_payment(session, trade.id)
    payment = Payment(trade_id=trade.id, provider=provider, status=PS.PENDING, amount=trade.amount,
                      currency=trade.currency, created_by=actor.user_id)
    try:
        with session.begin_nested():
            session.add(payment)
            session.flush()
    except IntegrityError:
        # The partial unique index (one pending payment per trade): a racing request got there first.
        _refuse_second_payment(session, trade.id)
        raise Conflict("Another payment of this trade is pending; cancel it first, then pay again.",
                       next_step="cancel the pending payment first, then pay again") from None
    call = begin_call(session, provider=provider, operation="payment", subject_id=payment.id, step="create",
                      amount=payment.amount, currency=payment.currency)
    result = run_provider_call(session, call, _create_call(gateway, payment, trade, call),
                               on_refused=lambda s, exc: _payment_refused(s, payment.id, exc))
    payment = _apply_created(session, payment.id, result)
    _cancel_if_cancelled(session, payment)
    return payment


def _create_call(gateway: Any, payment: Payment, trade: Trade, call: ProviderCall) -> Callable[[], PaymentResult]:
    """The provider call creating `payment`, with every value read now (the call runs outside any
    transaction and must not touch the session)."""
    kwargs = dict(reference=trade.id, amount=payment.amount, currency=payment.currency,
                  idempotency_key=call.idempotency_key,
                  metadata={"trade_id": trade.id, "contract_id": trade.contract_id, "payment_id": payment.id})
    return lambda: gateway.create_payment(**kwargs)


def _payment_refused(session: Session, payment_id: str, exc: ProviderError) -> None:
    payment = _locked_payment(session, payment_id)
    if payment.status == PS.PENDING:
        transition(payment, PAYMENT_TRANSITIONS, PS.FAILED, actor=None, what="Payment")
        audit.record(session, None, "payment.refused", "payment", payment.id, trade_id=payment.trade_id,
                     error=exc.detail[:500])


def _apply_created(session: Session, payment_id: str, result: PaymentResult) -> Payment:
    """The provider created the payment: remember its reference (and Stripe's client secret). A
    payment cancelled while the call was under way has its new intent cancelled too."""
    payment = _locked_payment(session, payment_id)
    if payment.provider_ref is None:
        payment.provider_ref = result.provider_ref
        payment.client_secret = result.client_secret
    session.flush()
    return payment


def _cancel_if_cancelled(session: Session, payment: Payment) -> None:
    """A payment cancelled while its creation was under way: cancel the intent just created too."""
    if payment.status == PS.CANCELED:
        call = _begin_cancel(session, payment)
        if call is not None:
            _run_cancel(session, call)


def _begin_cancel(session: Session, payment: Payment) -> ProviderCall | None:
    """Record the intent to cancel `payment` at its provider (made after the commit, or by the
    reconciliation job); None when there is nothing there to cancel yet."""
    if payment.provider == "manual" or payment.provider_ref is None:
        return None
    return begin_call(session, provider=payment.provider, operation="cancel", subject_id=payment.id,
                      step="cancel", amount=payment.amount, currency=payment.currency, target=payment.provider_ref)


def _run_cancel(session: Session, call: ProviderCall) -> None:
    """Cancel at the provider, outside any transaction. A refusal (the intent had already succeeded)
    or an unreachable provider leaves the payment canceled here: a success that still arrives is a
    duplicate and is refunded; an unanswered call is made again by the reconciliation job."""
    gateway, ref, key = get_gateway(call.provider), call.target, call.idempotency_key
    try:
        run_provider_call(session, call, lambda: gateway.cancel_payment(provider_ref=ref, idempotency_key=key))
    except (ProviderError, ProviderUnreachable) as exc:
        log.warning("could not cancel %s at %s: %s", ref, call.provider, exc)


def _cancel_pending(session: Session, payment: Payment, actor: Principal | None) -> ProviderCall | None:
    transition(payment, PAYMENT_TRANSITIONS, PS.CANCELED, actor=actor, what="Payment")
    audit.record(session, actor, "payment.canceled", "payment", payment.id, trade_id=payment.trade_id)
    return _begin_cancel(session, payment)


def cancel_payment(session: Session, *, payment_id: str, actor: Principal) -> Payment:
    """The buyer cancels its pending payment (then it may pay again); a Stripe PaymentIntent is
    cancelled at Stripe after the commit. Raises NotFound, Forbidden, Conflict (not pending)."""
    payment = _locked_payment(session, payment_id)
    trade = session.get(Trade, payment.trade_id)
    if not (actor.is_operator or actor.org_id in (trade.buyer_org_id, trade.seller_org_id)):
        raise NotFound("No such payment.")
    if actor.org_id != trade.buyer_org_id:
        raise Forbidden("Only the buyer cancels its payment.",
                        next_step="sign in as a member of the buying organization")
    if payment.status != PS.PENDING:
        raise Conflict(f"This payment is {payment.status}; only a pending payment can be cancelled.",
                       next_step=PAYMENT_TRANSITIONS.next_step(payment.status))
    call = _cancel_pending(session, payment, actor)
    session.flush()
    if call is not None:
        _run_cancel(session, call)
    return session.get(Payment, payment_id)


def shown_payment(session: Session, payment: Payment) -> Facts:
    """A payment with its trade's buyer: `PaymentSchema` shows the Stripe `client_secret` (which
    completes the payment) only to the buyer who pays, never to the seller or operators."""
    trade = session.get(Trade, payment.trade_id)
    return Facts(payment, buyer_org_id=trade.buyer_org_id if trade is not None else None)


def _escrow_payment(session: Session, payment: Payment, trade: Trade, actor: Principal | None) -> None:
    """The money arrived: payment succeeded, trade escrowed, ledger entry — one transaction."""
    if payment.status != PS.PENDING:
        raise Conflict(f"This payment is already {payment.status}.",
                       next_step=PAYMENT_TRANSITIONS.next_step(payment.status))
    if trade.status != T.AWAITING_PAYMENT:
        raise Conflict(f"This trade is already {trade.status}.", next_step=TRADE_TRANSITIONS.next_step(trade.status))
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
    # Delivery creates the entitlement (and may deliver a published release) in this transaction.
    hooks.call("trade_escrowed", session, trade=trade)
    session.flush()


def _take_duplicate(session: Session, payment: Payment, trade: Trade, *, via: str) -> None:
    """The provider took money for a payment that was no longer pending, or for a trade no longer
    awaiting payment: the payment succeeded, and goes straight to `refund_pending` (refunded by a job
    after this commit). No ledger entry: this money never entered the exchange's escrow."""
    if payment.status in (PS.PENDING, PS.CANCELED):
        transition(payment, PAYMENT_TRANSITIONS, PS.SUCCEEDED, actor=None, what="Payment")
        payment.confirmed_at = utcnow()
    transition(payment, PAYMENT_TRANSITIONS, PS.REFUND_PENDING, actor=None, what="Payment")
    payment.refund_reason = DUPLICATE
    audit.record(session, None, "payment.duplicate", "payment", payment.id, trade_id=trade.id,
                 trade_status=trade.status, amount=payment.amount, currency=payment.currency, via=via)
    session.flush()


def refund_duplicate(session: Session, *, payment_id: str) -> bool:
    """Refund a `refund_pending` payment at its provider and mark it `refunded` (the caller commits).

    Its own short transactions: the intent (a provider call keyed on the payment), the refund with no
    transaction open, then the result. False when there is nothing to do or the provider did not
    refund (the call's answer is recorded; the reconciliation job tries again)."""
    payment = _locked_payment(session, payment_id)
    if payment.status != PS.REFUND_PENDING or payment.provider_ref is None:
        return False
    call = begin_call(session, provider=payment.provider, operation="refund", subject_id=payment.id,
                      step="duplicate-refund", amount=payment.amount, currency=payment.currency,
                      target=payment.provider_ref)
    gateway, ref, amount, key = (get_gateway(payment.provider), payment.provider_ref, payment.amount,
                                 call.idempotency_key)
    try:
        result = run_provider_call(session, call, lambda: gateway.refund(provider_ref=ref, amount=amount,
                                                                         idempotency_key=key))
    except (ProviderError, ProviderUnreachable) as exc:
        log.warning("could not refund the duplicate payment %s: %s", payment_id, exc)
        return False
    payment = _locked_payment(session, payment_id)
    if payment.status != PS.REFUND_PENDING or result.status != ProviderStatus.SUCCEEDED:
        return False
    transition(payment, PAYMENT_TRANSITIONS, PS.REFUNDED, actor=None, what="Payment")
    payment.refunded_at = utcnow()
    audit.record(session, None, "payment.refunded", "payment", payment.id, trade_id=payment.trade_id,
                 amount=payment.amount, refund_reason=payment.refund_reason, provider_ref=result.provider_ref)
    session.flush()
    return True


def _refund_after_commit(session: Session, payment_id: str) -> Callable[[], None]:
    """The job run right after the transaction that marked the payment `refund_pending` (if that
    transaction rolled back, the payment is not refund_pending and nothing happens)."""
    def run() -> None:
        try:
            refund_duplicate(session, payment_id=payment_id)
            session.commit()
        except Exception:
            session.rollback()
            raise
    return run


def confirm_payment(session: Session, *, payment_id: str, actor: Principal) -> Payment:
    """Operator: the manual bank transfer arrived; the trade is escrowed. A repeat -> 409."""
    actor.require_operator()
    payment = _locked_payment(session, payment_id)
    if payment.provider != "manual":
        raise Conflict("Only manual payments are confirmed by operators; Stripe confirms its own.",
                       next_step="nothing to do: Stripe confirms this payment itself")
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
    if payment.status not in (PS.PENDING, PS.CANCELED):
        return {"received": True, "applied": False, "reason": f"payment already {payment.status}"}
    intent = event.raw["data"]["object"]
    # The event type alone is not the money: the object must be our PaymentIntent, succeeded, with the
    # payment's exact amount received (an integer) in its currency.
    if intent.get("object") != "payment_intent" or intent.get("status") != "succeeded":
        return {"received": True, "applied": False, "reason": "the payment intent has not succeeded"}
    # Stripe always reports amount_received; a peer that omits it (localstripe) is held to `amount`.
    received = intent["amount_received"] if "amount_received" in intent else intent.get("amount")
    if type(received) is not int or received != payment.amount or (event.currency or "") != payment.currency:
        audit.record(session, None, "payment.amount_mismatch", "payment", payment.id, trade_id=trade.id,
                     event_id=event.id, event_amount=event.amount, event_currency=event.currency)
        return {"received": True, "applied": False, "reason": "amount or currency does not match the trade"}
    if payment.status == PS.PENDING and trade.status == T.AWAITING_PAYMENT:
        _escrow_payment(session, payment, trade, None)
        return {"received": True, "applied": True, "trade_id": trade.id}
    _take_duplicate(session, payment, trade, via=f"webhook {event.id}")
    after_transaction(_refund_after_commit(session, payment.id))
    return {"received": True, "applied": True, "trade_id": trade.id,
            "reason": "duplicate payment: refund_pending, refunded after this commit"}


def _succeeded_payment(session: Session, payment: Payment, trade: Trade, result: PaymentResult,
                       *, via: str) -> str | None:
    """Apply a provider's success learnt by reconciliation (both rows locked): "escrowed",
    "duplicate" or None when there is nothing to apply."""
    if result.status != ProviderStatus.SUCCEEDED or result.amount != payment.amount:
        return None
    if payment.status == PS.PENDING and trade.status == T.AWAITING_PAYMENT:
        _escrow_payment(session, payment, trade, None)
        return "escrowed"
    if payment.status in (PS.PENDING, PS.CANCELED):
        _take_duplicate(session, payment, trade, via=via)
        return DUPLICATE
    return None


def reconcile_stripe(session: Session, *, older_than: timedelta = timedelta(minutes=10),
                     batch: int = BATCH) -> int:
    """The Stripe safety net, one short transaction per item, provider calls between transactions:

    1. calls begun but never answered (a crash between the intent's commit and the answer) are made
       again with the same idempotency key and their result applied;
    2. `refund_pending` payments (a crash before the duplicate's refund) are refunded;
    3. pending payments whose webhook never came, and cancelled ones whose cancel Stripe refused,
       are re-fetched: a success escrows the trade, or is a duplicate and is refunded.

    Returns how many payments it escrowed or refunded. Each step takes at most `batch` items.
    """
    session.commit()
    done = 0
    # Transfers are not among them: their payouts stay pending, and send_transfers makes them again.
    calls = abandoned_calls(session, provider="stripe", limit=batch, operations=("payment", "cancel", "refund"))
    session.commit()
    for call in calls:
        done += _per_item(session, lambda c=call: _complete_abandoned(session, c), f"call {call.id}")
    refunds = list(session.scalars(
        select(Payment.id).where(Payment.provider == "stripe", Payment.status == PS.REFUND_PENDING)
        .order_by(Payment.created_at).limit(batch)))
    session.commit()
    for payment_id in refunds:
        done += _per_item(session, lambda p=payment_id: refund_duplicate(session, payment_id=p), payment_id)
    refused_cancel = exists().where(ProviderCall.subject_id == Payment.id, ProviderCall.operation == "cancel",
                                    ProviderCall.status == "failed")
    due = list(session.scalars(
        select(Payment.id).where(
            Payment.provider == "stripe", Payment.provider_ref.is_not(None),
            ((Payment.status == PS.PENDING) & (Payment.created_at <= utcnow() - older_than))
            | ((Payment.status == PS.CANCELED) & refused_cancel),
        ).order_by(Payment.created_at).limit(batch)))
    session.commit()
    for payment_id in due:
        done += _per_item(session, lambda p=payment_id: _reconcile_payment(session, p), payment_id)
    return done


def _reconcile_payment(session: Session, payment_id: str) -> bool:
    payment = session.get(Payment, payment_id)
    gateway, ref = get_gateway("stripe"), payment.provider_ref
    result = outside_transaction(session, lambda: gateway.retrieve_payment(ref))
    payment = _locked_payment(session, payment_id)
    trade = _locked_trade(session, payment.trade_id)
    applied = _succeeded_payment(session, payment, trade, result, via="reconciliation")
    if applied == DUPLICATE:
        return refund_duplicate(session, payment_id=payment_id)
    return applied is not None


def _complete_abandoned(session: Session, call: ProviderCall) -> bool:
    """Make an unanswered call again (the same key: a replay at the provider) and apply its result."""
    gateway = get_gateway(call.provider)
    if call.operation == "payment":
        payment = session.get(Payment, call.subject_id)
        trade = session.get(Trade, payment.trade_id)
        # Refused now, it fails as the request's own refusal would: the trade may be paid again.
        result = run_provider_call(session, call, _create_call(gateway, payment, trade, call),
                                   on_refused=lambda s, exc: _payment_refused(s, payment.id, exc))
        _cancel_if_cancelled(session, _apply_created(session, payment.id, result))
        return False
    if call.operation == "cancel":
        _run_cancel(session, call)
        return False
    if call.step == "duplicate-refund":
        return refund_duplicate(session, payment_id=call.subject_id)
    # A dispute's refund: the resolution itself is applied by the operator's retry of it (the same
    # refund amount finds this call answered; another amount is refused).
    ref, amount, key = call.target, call.amount, call.idempotency_key
    run_provider_call(session, call, lambda: gateway.refund(provider_ref=ref, amount=amount, idempotency_key=key))
    return False


# -- cancelled trades (API.md, Trades: `awaiting_payment` -> `cancelled`, no money moved) -------------
def _cancel_at_provider_after_commit(session: Session, payment_id: str) -> None:
    """Cancel a cancelled payment's intent at its provider once this request's transaction has ended
    (never inside it). Outside a request (the sweep) the begun call is left to the reconciliation
    job, which makes every unanswered call again under its key."""
    if not has_request_context():
        return

    def run() -> None:
        try:
            payment = session.get(Payment, payment_id)
            call = find_call(session, provider=payment.provider, subject_id=payment_id, step="cancel") \
                if payment is not None else None
            session.commit()
            if call is not None and call.status == "started":
                _run_cancel(session, call)
        except Exception:
            session.rollback()
            raise
    after_transaction(run)


def cancel_unpaid_trade(session: Session, *, trade_id: str, reason: str, actor: Principal | None = None,
                        due: Callable[[Trade], str | None] | None = None) -> Trade | None:
    """`awaiting_payment` -> `cancelled`: its pending payment is cancelled first (locked before the
    trade, as a confirmation locks them), then the trade. No money moved, so no ledger entry. With
    `due`, the trade is cancelled only if `due(trade)` (seen under the lock) gives the reason.
    Returns the trade, or None when it no longer awaits payment (or is not due)."""
    pending_id = session.execute(select(Payment.id).where(Payment.trade_id == trade_id,
                                                          Payment.status == PS.PENDING)).scalars().first()
    payment = _locked_payment(session, pending_id) if pending_id is not None else None
    trade = _locked_trade(session, trade_id)
    if trade.status != T.AWAITING_PAYMENT:
        return None
    if due is not None:
        reason = due(trade)
        if reason is None:
            return None
    call = None
    if payment is not None and payment.status == PS.PENDING:
        call = _cancel_pending(session, payment, actor)
    _move(trade, T.CANCELLED, actor=actor)
    trade.cancelled_at, trade.cancel_reason = utcnow(), reason[:300]
    audit.record(session, actor, "trade.cancelled", "trade", trade.id, reason=reason,
                 payment_id=payment.id if payment is not None else None)
    session.flush()
    if call is not None:
        _cancel_at_provider_after_commit(session, payment.id)
    return trade


def _canceller(session: Session, actor: Principal | None) -> Callable[[str, str], Any]:
    return lambda trade_id, reason: cancel_unpaid_trade(session, trade_id=trade_id, reason=reason, actor=actor)


def cancel_by_operator(session: Session, *, trade_id: str, reason: str, actor: Principal) -> Trade:
    """Operator: cancel a trade nobody paid (a subscription's period: the subscription lapses)."""
    actor.require_operator()
    sub = subscriptions.lock_of_trade(session, trade_id)
    trade = visible(session, trade_id, actor)
    cancelled = cancel_unpaid_trade(session, trade_id=trade.id, reason=f"cancelled by an operator: {reason}",
                                    actor=actor)
    if cancelled is None:
        raise Conflict(f"This trade is {trade.status}; only a trade awaiting payment can be cancelled "
                       "(a paid one is refunded through a dispute's resolution).",
                       next_step="to give the money back, the buyer opens a dispute and an operator resolves it "
                                 "with a refund" if trade.status in (T.ESCROWED, T.DELIVERED)
                       else TRADE_TRANSITIONS.next_step(trade.status))
    subscriptions.on_period_cancelled(session, sub, cancelled, "cancelled by an operator",
                                      cancel_unpaid=_canceller(session, actor))
    return cancelled


def unpaid_due(session: Session, now: Any, limit: int) -> list[str]:
    """Trades awaiting payment past their deadline (the sweep): a subscription period past its start
    + DATAFAIR_GRACE_DAYS, any trade DATAFAIR_PAYMENT_DAYS after its contract was signed."""
    grace, payment_days = _deadlines()
    return list(session.execute(
        select(Trade.id).where(Trade.status == T.AWAITING_PAYMENT,
                               or_(Trade.period_start <= now - grace, Trade.created_at <= now - payment_days))
        .order_by(Trade.created_at, Trade.id).limit(limit)).scalars())


def _deadlines() -> tuple[timedelta, timedelta]:
    return (timedelta(days=int(current_app.config["GRACE_DAYS"])),
            timedelta(days=int(current_app.config["PAYMENT_DAYS"])))


def cancel_overdue(session: Session, trade_id: str, now: Any) -> bool:
    """One overdue trade (a sweep item): its subscription locked first, re-checked under the locks,
    cancelled; a subscription's period not paid within the grace lapses the subscription."""
    grace, payment_days = _deadlines()

    def due(trade: Trade) -> str | None:
        if trade.period_start is not None and trade.period_start <= now - grace:
            return f"not paid within {grace.days} days of the period's start"
        if trade.created_at <= now - payment_days:
            return f"not paid within {payment_days.days} days of the contract's signature"
        return None

    sub = subscriptions.lock_of_trade(session, trade_id)
    trade = cancel_unpaid_trade(session, trade_id=trade_id, reason="", due=due)
    if trade is None:
        return False
    subscriptions.on_period_cancelled(session, sub, trade, trade.cancel_reason or "not paid",
                                      cancel_unpaid=_canceller(session, None))
    return True


def cancel_subscription(session: Session, *, contract_id: str, actor: Principal) -> Contract:
    """The buyer cancels its subscription (API.md: `POST /contracts/{id}/subscription/cancel`)."""
    contract = rules.for_parties(session, Contract, contract_id, actor, parties=("buyer_org_id", "seller_org_id"),
                                 what="contract")
    subscriptions.cancel(session, contract=contract, actor=actor,
                         cancel_unpaid=_canceller(session, actor))
    return contract


def end_subscription_after_revocation(session: Session, *, contract_id: str, reason: str) -> bool:
    """Delivery revoked a subscription's access: end it, cancelling its unpaid periods and refunding
    its paid periods not yet begun (API.md, Delivery and use)."""
    return subscriptions.end_after_revocation(
        session, contract_id=contract_id, reason=reason,
        cancel_unpaid=_canceller(session, None),
        refund_unstarted=lambda t, r: settlement.refund_unstarted(session, trade_id=t, reason=r))
