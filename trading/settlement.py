"""The trade's money flow after payment (payments themselves are in `trading.payments`): delivery,
acceptance and settlement, disputes with refunds, auto-acceptance, and payouts from a seller's
payable balance.

Each step is one database transaction holding its state change and its ledger entry (posted through
`exchange.ledger.engine.post_entry`, the only writer of the ledger). Accounts: trading's own
purposes (`PURPOSES`, registered on the app) — the buyer's `buyer_funding`, the trade's
`trade_escrow`, the seller's `seller_payable` — and the ledger's `exchange_fees` and the provider's
`payouts_clearing`.

Every call to a payment provider goes through `exchange.payments.run_provider_call`: the intent (a
`provider_calls` row with its idempotency key) is committed in a short transaction, the call is made
with no transaction open, and the result is applied in a new short transaction (row locked, state
re-checked). A request that calls a provider therefore commits more than once; a crash between the
steps leaves a `started` call that the reconciliation job makes again under the same key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from certification import registrations
from exchange import hooks
from exchange.db import utcnow
from exchange.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed, field_error
from exchange.events import outbox
from exchange.identity import audit
from exchange.identity import services as identity
from exchange.identity.models import Organization
from exchange.identity.states import OrgStatus
from exchange.ledger.engine import AccountRef, Posting, balance, post_entry
from exchange.ledger.models import EXCHANGE_OWNER, EntryKind, Purpose
from exchange.money import fee_for
from exchange.payments import (
    begin_call,
    find_call,
    get_gateway,
    run_provider_call,
)
from exchange.principal import Principal
from exchange.states import load_for_update, transition
from listings import services as listings
from trading import rules, subscriptions
from trading.models import Dispute, Payment, Payout, Trade
from trading.states import (
    DISPUTE_TRANSITIONS,
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
log = logging.getLogger("datafair.settlement")
# The jobs' bounded batches: one short transaction per item, provider calls between transactions.
BATCH = 100

# The ledger accounts trading owns (registered on the app by trading's init_app); the exchange's
# fees and the providers' clearing accounts are the ledger's own.
PURPOSES = (
    Purpose("buyer_funding", "organization", False,
            "money a buyer organization brought in; goes negative as it pays (owner: buyer org id)"),
    Purpose("trade_escrow", "trade", True,
            "money held for one trade until settlement or refund (owner: trade id)"),
    Purpose("seller_payable", "organization", True,
            "what the exchange owes a seller, until paid out (owner: seller org id)"),
)


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
    if target == TradeStatus.REFUNDED:
        # A refunded trade ends its contract's licence in the rights register (API.md Compliance).
        registrations.cancel_licence(session, contract_id=trade.contract_id, seller_org_id=trade.seller_org_id)


# -- shared by the money steps (trading.payments too) -----------------------------------------------
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


def _in_escrow(trade: Trade) -> int:
    """What the trade's escrow still holds: paid, less refunds and usage drawdowns."""
    return trade.paid_amount - trade.refunded_amount - trade.drawn_amount


def _per_item(session: Session, fn: Callable[[], Any], what: str) -> int:
    """One item of a job: its own transactions, committed; a failure is logged and rolled back so
    that the rest of the batch goes on."""
    try:
        result = fn()
        session.commit()
    except (DomainError, IntegrityError) as exc:
        session.rollback()
        log.warning("job item %s failed: %s", what, exc)
        return 0
    return 1 if result else 0


# -- delivery, acceptance, settlement ---------------------------------------------------------------
def _require_seller(trade: Trade, actor: Principal) -> None:
    if actor.org_id != trade.seller_org_id:
        raise Forbidden("Only the seller delivers.", next_step="sign in as a member of the selling organization")


def check_may_deliver(session: Session, actor: Principal, *, trade_id: str, **_ids: Any) -> None:
    """Whether the actor may declare the trade's delivery (its seller): Forbidden, NotFound. Reads only."""
    _require_seller(visible(session, trade_id, actor), actor)


def deliver(session: Session, *, trade_id: str, reference: str, sha256: str, actor: Principal) -> Trade:
    """The seller declares a delivery made outside the exchange (a reference and the sha256 of what
    was delivered). Conflict where the exchange delivers itself (the `trade_delivery_declared`
    hook: a published release, an upstream), or unless `escrowed`."""
    trade = visible(session, trade_id, actor, lock=True)
    _require_seller(trade, actor)
    # The table also lets a disputed per_call trade return to delivered, but only by a resolution.
    if trade.status != T.ESCROWED:
        raise Conflict(f"This trade is {trade.status}; only an escrowed trade is delivered.",
                       next_step=TRADE_TRANSITIONS.next_step(trade.status))
    refused = hooks.refusal("trade_delivery_declared", session, trade=trade)
    if refused:
        raise Conflict(refused,
                       next_step="nothing to do: the exchange marks this trade delivered itself (a published "
                                 "release, the buyer's first call)")
    _delivered(trade, reference=reference, sha256=sha256, evidence="declared", actor=actor)
    session.flush()
    return trade


def _delivered(trade: Trade, *, reference: str, sha256: str, evidence: str, actor: Principal | None) -> None:
    _move(trade, T.DELIVERED, actor=actor)
    trade.delivery_reference, trade.delivery_sha256, trade.delivery_evidence = reference, sha256, evidence
    trade.delivered_at = trade.acceptance_started_at = utcnow()


def deliver_by_exchange(session: Session, *, trade: Trade, reference: str, sha256: str, evidence: str) -> bool:
    """The exchange itself delivered (a published release, a counted call, a query): an `escrowed`
    trade (loaded for update) becomes `delivered`, its acceptance period starting; False if it is
    not escrowed (already delivered, disputed, ended)."""
    if trade.status != T.ESCROWED:
        return False
    _delivered(trade, reference=reference, sha256=sha256, evidence=evidence, actor=None)
    session.flush()
    return True


def restart_acceptance(session: Session, *, trade: Trade) -> bool:
    """Access resumed after a suspension: a `delivered` trade's (loaded for update) acceptance period
    starts again now (auto-acceptance never settled it while access was suspended)."""
    if trade.status != T.DELIVERED:
        return False
    trade.acceptance_started_at = utcnow()
    session.flush()
    return True


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
        raise Forbidden("Only the buyer accepts a delivery.",
                        next_step="sign in as a member of the buying organization")
    if is_per_call(session, trade):
        raise Conflict("A per_call trade has no acceptance: it settles when its entitlement ends.",
                       next_step="nothing to do: the trade settles by itself when its entitlement ends")
    # The table also lets a dispute end settled, but only through an operator's resolution.
    if trade.status != T.DELIVERED:
        raise Conflict(f"This trade is {trade.status}; only a delivered trade can be accepted.",
                       next_step=TRADE_TRANSITIONS.next_step(trade.status))
    _move(trade, T.SETTLED, actor=actor)
    _settle(session, trade, how="accepted")
    session.flush()
    return trade


def auto_acceptance_due(session: Session, now: datetime, limit: int) -> list[str]:
    """Ids of at most `limit` delivered trades whose acceptance period has ended, the oldest first
    (never a per_call trade: it settles when its entitlement ends)."""
    ends = now - timedelta(days=int(current_app.config["ACCEPTANCE_DAYS"]))
    started = func.coalesce(Trade.acceptance_started_at, Trade.delivered_at)
    return list(session.execute(
        select(Trade.id)
        .where(Trade.status == T.DELIVERED, started <= ends, ~rules.per_call_contract(Trade.contract_id))
        .order_by(started, Trade.id).limit(limit)
    ).scalars())


def auto_accept(session: Session, trade_id: str, now: datetime) -> bool:
    """Settle one delivered trade the buyer neither accepted nor disputed within the acceptance
    period (one sweep item, its own transaction); False if a request moved it meanwhile."""
    trade = _locked_trade(session, trade_id)
    ends = now - timedelta(days=int(current_app.config["ACCEPTANCE_DAYS"]))
    started = trade.acceptance_started_at or trade.delivered_at
    if trade.status != T.DELIVERED or started is None or started > ends or is_per_call(session, trade):
        return False
    # Never while the buyer's access is suspended (delivery answers); the period restarts when it resumes.
    held = hooks.refusal("trade_auto_accepting", session, trade=trade)
    if held:
        log.info("auto-acceptance of %s held: %s", trade.id, held)
        # The hook may have persisted the suspension; that write commits with this item.
        session.flush()
        return False
    _move(trade, T.SETTLED)
    _settle(session, trade, how="auto_accepted")
    session.flush()
    return True


# -- metered usage (per_call trades) ----------------------------------------------------------------
# Set on the session while a resolution asks delivery to draw the counted calls (the
# `per_call_resolving` hook): only then may a disputed trade's escrow be drawn.
_RESOLVING = "trading.per_call_resolving"


def is_per_call(session: Session, trade: Trade) -> bool:
    """Whether the trade's contract was made on a per_call product version."""
    return rules.contract_is_per_call(session, trade.contract_id)


def draw_usage(session: Session, *, trade_id: str, amount: int, period: str) -> str | None:
    """Release `amount` (gross) of a per_call trade's escrow for the calls of one usage period: one
    `usage` entry, escrow -> seller payable + fee, in the caller's transaction. Returns its id, or
    None while the trade is disputed (nothing drawn; the caller tries again after the resolution).

    The fee is `fee_for(all drawn so far) - fees already taken`, so the fees of many drawdowns sum
    to the fee of their total, whatever the rounding. Conflict unless the trade is a per_call trade
    `escrowed` or `delivered`, or when `amount` exceeds what remains in escrow.
    """
    if type(amount) is not int or amount <= 0:
        raise field_error("amount", "must be a positive integer of minor units")
    trade = _locked_trade(session, trade_id)
    if trade.status == T.DISPUTED and session.info.get(_RESOLVING) != trade.id:
        return None
    if trade.status not in (T.ESCROWED, T.DELIVERED, T.DISPUTED):
        raise Conflict(f"This trade is {trade.status}; only an escrowed or delivered trade's usage is drawn.",
                       next_step=TRADE_TRANSITIONS.next_step(trade.status))
    if not is_per_call(session, trade):
        raise Conflict("Only a per_call trade's escrow is drawn by usage.",
                       next_step="none: only per_call trades are metered")
    remaining = _in_escrow(trade)
    if amount > remaining:
        raise Conflict(f"The escrow holds {remaining}; cannot draw {amount} of usage.",
                       next_step="buy more calls: the escrow left is smaller than this usage")
    drawn = trade.drawn_amount + amount
    fee = fee_for(drawn, trade.fee_bps) - trade.fee
    trade.drawn_amount, trade.fee = drawn, trade.fee + fee
    trade.updated_at = utcnow()
    entry = post_entry(session, kind=EntryKind.USAGE, trade_id=trade.id, postings=[
        Posting(_escrow(trade), -amount),
        *([Posting(_payable(trade.seller_org_id, trade.currency), amount - fee)] if amount > fee else []),
        *([Posting(_fees(trade.currency), fee)] if fee else []),
    ], metadata={"period": period, "fee_bps": trade.fee_bps})
    session.flush()
    return entry.id


def _refund_rest(session: Session, trade: Trade, amount: int, reason: str) -> None:
    if amount:
        post_entry(session, kind=EntryKind.REFUND, trade_id=trade.id,
                   postings=[Posting(_escrow(trade), -amount), Posting(_funding(trade), amount)],
                   metadata={"reason": reason})
        trade.refunded_amount += amount
        _record_fair_sale(session, trade)


def _end_metered(trade: Trade, *, how: str, actor: Principal | None) -> None:
    """A per_call trade whose escrow is empty ends: `refunded` if no call was ever drawn (the
    status line allows it only from escrowed or disputed), else `settled`."""
    nothing_drawn = trade.drawn_amount == 0 and trade.status in (T.ESCROWED, T.DISPUTED)
    _move(trade, T.REFUNDED if nothing_drawn else T.SETTLED, actor=actor)
    trade.settled_at, trade.settlement = utcnow(), "refunded" if nothing_drawn else how


def end_per_call(session: Session, *, trade_id: str) -> bool:
    """A per_call trade's entitlement ended (expired, revoked, calls used up): what remains in escrow
    (the unused calls) goes back to the buyer (a `refund` entry) and the trade ends — `settled`, or
    `refunded` when no call was ever drawn. False if it had already ended. Conflict while it is
    disputed (the resolution decides; end it after) or awaits payment, or unless it is per_call.
    """
    trade = _locked_trade(session, trade_id)
    if trade.status in (T.SETTLED, T.REFUNDED):
        return False
    if trade.status not in (T.ESCROWED, T.DELIVERED):
        raise Conflict(f"This trade is {trade.status}; only an escrowed or delivered per_call trade ends.",
                       next_step=TRADE_TRANSITIONS.next_step(trade.status))
    if not is_per_call(session, trade):
        raise Conflict("Only a per_call trade ends with its entitlement.",
                       next_step="none: only a per_call trade ends with its entitlement")
    _refund_rest(session, trade, _in_escrow(trade), "unused calls")
    _end_metered(trade, how="usage_ended", actor=None)
    session.flush()
    return True


def refund_unstarted(session: Session, *, trade_id: str, reason: str) -> bool:
    """A subscription's paid period that has not begun, refunded in full because the subscription
    ended (its access revoked): escrow back to the buyer (a `refund` entry), the trade `refunded`, in
    the caller's transaction. A Stripe payment's refund is begun here and made outside any
    transaction: after this request's commit, or by the reconciliation job (an unanswered call)."""
    trade = _locked_trade(session, trade_id)
    if trade.status != T.ESCROWED:
        return False
    amount = _in_escrow(trade)
    _refund_rest(session, trade, amount, reason)
    _move(trade, T.REFUNDED)
    trade.fee = 0
    trade.settled_at, trade.settlement = utcnow(), "refunded"
    payment = session.execute(
        select(Payment).where(Payment.trade_id == trade.id, Payment.status == PS.SUCCEEDED)
    ).scalars().first()
    if amount and payment is not None and payment.provider != "manual":
        begin_call(session, provider=payment.provider, operation="refund", subject_id=trade.id, step="refund-unstarted",
                   amount=amount, currency=trade.currency, target=payment.provider_ref)
    audit.record(session, None, "trade.refunded", "trade", trade.id, amount=amount, reason=reason)
    session.flush()
    return True


# -- disputes ---------------------------------------------------------------------------------------
def _require_disputer(trade: Trade, actor: Principal) -> None:
    if actor.org_id != trade.buyer_org_id and not actor.is_operator:
        raise Forbidden("Only the buyer (or an operator on its behalf) disputes a trade.",
                        next_step="sign in as a member of the buying organization, or ask an operator to open the "
                                  "dispute")


def check_may_dispute(session: Session, actor: Principal, *, trade_id: str, **_ids: Any) -> None:
    """Whether the actor may dispute the trade (its buyer, an operator): Forbidden, NotFound. Reads only."""
    _require_disputer(visible(session, trade_id, actor), actor)


def open_dispute(session: Session, *, trade_id: str, reason: str, actor: Principal) -> Dispute:
    """The buyer (or an operator on its behalf, e.g. while it is suspended) disputes an escrowed or
    delivered trade; settlement waits for an operator, and the buyer's entitlement is suspended."""
    trade = visible(session, trade_id, actor, lock=True)
    _require_disputer(trade, actor)
    _move(trade, T.DISPUTED, actor=actor)
    dispute = Dispute(trade_id=trade.id, opened_by=actor.user_id, reason=reason, status=DisputeStatus.OPEN)
    session.add(dispute)
    hooks.call("trade_disputed", session, trade=trade)
    session.flush()
    return dispute


def resolve(session: Session, *, trade_id: str, refund_amount: int, comment: str | None,
            actor: Principal, end_access: bool = False) -> Trade:
    """Operator: refund part or all of what remains in escrow (never more: 422) and settle the rest.

    A full refund ends `refunded`; a partial one `settled` with `refunded_amount`. `end_access`
    revokes the buyer's entitlement (the `trade_resolved` hook, same transaction).

    A per_call trade: delivery first draws the calls counted but not yet drawn (the
    `per_call_resolving` hook); `refund_amount` is then a whole number of calls, at most what
    remains. With `end_access` the rest (the unused calls) is refunded too and the trade ends
    `settled` (`refunded` if nothing was ever drawn); without it the trade returns to `delivered`
    and delivery takes the refunded calls off the entitlement (the `per_call_refunded_calls` hook).
    """
    actor.require_operator()
    # A subscription's row first, as every subscription change takes it (a full refund of a period
    # not yet begun ends the subscription; of the running one, delivery revokes and ends it).
    sub = subscriptions.lock_of_trade(session, trade_id) if isinstance(trade_id, str) else None
    # Locked until the refund's intent commits: a racing resolution sees that intent (below).
    trade = visible(session, trade_id, actor, lock=True)
    if trade.status != T.DISPUTED:
        raise Conflict(f"This trade is {trade.status}, not disputed.",
                       next_step=TRADE_TRANSITIONS.next_step(trade.status))
    per_call = is_per_call(session, trade)
    refund_total = refund_amount
    if per_call:
        session.info[_RESOLVING] = trade.id
        try:
            hooks.call("per_call_resolving", session, trade=trade)
        finally:
            session.info.pop(_RESOLVING, None)
        _calls, unit = rules.calls_bought(session, trade.contract_id)
        if refund_amount % unit:
            raise field_error("refund_amount", f"must be a whole number of calls (the unit price is {unit})")
        if end_access:
            refund_total = _in_escrow(trade)
    if refund_amount > _in_escrow(trade):
        raise field_error("refund_amount", f"cannot exceed what remains in escrow ({_in_escrow(trade)})")
    payment = session.execute(
        select(Payment).where(Payment.trade_id == trade.id, Payment.status == PS.SUCCEEDED)
    ).scalar_one_or_none()
    if payment is not None and payment.provider != "manual":
        # One key per dispute: a retried resolution replays its refund, a different amount is refused.
        open_id = session.execute(select(Dispute.id).where(
            Dispute.trade_id == trade.id, Dispute.status == DisputeStatus.OPEN)).scalars().first()
        step = f"refund-{open_id}" if open_id else "refund"
        begun = find_call(session, provider=payment.provider, subject_id=trade.id, step=step)
        if begun is not None and begun.status != "failed" and begun.amount != refund_total:
            # Another resolution's refund is under way (or made): settling without it would lose it.
            raise Conflict(f"A refund of {begun.amount} is already under way for this dispute; "
                           "retry that resolution with the same refund_amount.",
                           next_step="retry the resolution with the same refund_amount")
    if refund_total and payment is not None and payment.provider != "manual":
        call = begin_call(session, provider=payment.provider, operation="refund", subject_id=trade.id,
                          step=step, amount=refund_total, currency=trade.currency, target=payment.provider_ref)
        gateway, ref, key = get_gateway(payment.provider), payment.provider_ref, call.idempotency_key
        run_provider_call(session, call, lambda: gateway.refund(provider_ref=ref, amount=refund_total,
                                                                idempotency_key=key))
    if sub is not None:
        sub = subscriptions.lock_of_trade(session, trade_id)  # again: the refund's call committed
    trade = _locked_trade(session, trade_id)
    if trade.status != T.DISPUTED:
        raise Conflict(f"This trade is {trade.status}, not disputed.",
                       next_step=TRADE_TRANSITIONS.next_step(trade.status))
    _refund_rest(session, trade, refund_total, "dispute resolution")
    if per_call and end_access:
        _end_metered(trade, how="dispute_resolved", actor=actor)
    elif per_call:
        _move(trade, T.DELIVERED, actor=actor)
        if refund_total:
            hooks.call("per_call_refunded_calls", session, trade=trade,
                       calls=refund_total // rules.calls_bought(session, trade.contract_id)[1])
    elif trade.refunded_amount >= trade.paid_amount:
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
        dispute.refund_amount = refund_total
        dispute.resolved_by, dispute.resolved_at, dispute.comment = actor.user_id, utcnow(), comment
    subscriptions.end_after_unstarted_refund(session, sub, trade)
    hooks.call("trade_resolved", session, trade=trade, end_access=end_access, actor=actor)
    audit.record(session, actor, "trade.resolved", "trade", trade.id, refund_amount=refund_amount,
                 status=trade.status, end_access=end_access)
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
        raise Conflict("This organization has no Stripe account for payouts (stripe_account_id).",
                       next_step="an operator must set the organization's stripe_account_id first, or pay out with "
                                 "the manual provider")
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


def send_transfers(session: Session, *, batch: int = BATCH) -> int:
    """Make the Stripe Transfers of committed pending payouts (idempotent per payout; none to a
    suspended organization, whose payouts wait for its reinstatement), at most `batch`
    per run, each in its own short transactions with the Transfer made between them; returns how
    many were sent."""
    pending = list(session.scalars(
        select(Payout.id).where(Payout.provider == "stripe", Payout.status == PayoutStatus.PENDING,
                                # held, still pending, while the payee is suspended
                                Payout.org_id.not_in(select(Organization.id)
                                                     .where(Organization.status == OrgStatus.SUSPENDED)))
        .order_by(Payout.created_at).limit(batch)))
    session.commit()
    return sum(_per_item(session, lambda p=payout_id: _send_transfer(session, p), payout_id) for payout_id in pending)


def _send_transfer(session: Session, payout_id: str) -> bool:
    record = load_for_update(session, Payout, payout_id)
    if record is None or record.status != PayoutStatus.PENDING:
        return False
    payee = session.get(Organization, record.org_id)
    if payee.status == OrgStatus.SUSPENDED:
        return False  # held until the organization is reinstated
    account = payee.stripe_account_id
    call = begin_call(session, provider="stripe", operation="transfer", subject_id=record.id, step="transfer",
                      amount=record.amount, currency=record.currency, target=account)
    gateway, amount, currency, key = get_gateway("stripe"), record.amount, record.currency, call.idempotency_key
    result = run_provider_call(session, call, lambda: gateway.transfer(
        destination_account=account, amount=amount, currency=currency, idempotency_key=key,
        metadata={"payout_id": payout_id}))
    # Re-locked after the call; a payout another run already marked paid is left alone (the key made
    # this Transfer a replay of that one).
    record = load_for_update(session, Payout, payout_id)
    if record.status != PayoutStatus.PENDING:
        return False
    record.provider_ref = result.provider_ref
    transition(record, PAYOUT_TRANSITIONS, PayoutStatus.PAID, actor=None, what="Payout")
    outbox.emit(session, event_type="payout.sent", org_ids=[record.org_id],
                payload={"payout_id": record.id, "amount": record.amount, "currency": record.currency,
                         "provider": "stripe", "provider_ref": result.provider_ref})
    audit.record(session, None, "payout.sent", "payout", record.id, provider_ref=result.provider_ref)
    session.flush()
    return True


def can_read_entries(session: Session, principal: Principal, trade_id: str) -> bool:
    """Ledger entries of a trade are readable by its two parties."""
    trade = session.get(Trade, trade_id)
    return trade is not None and principal.org_id in (trade.buyer_org_id, trade.seller_org_id)


