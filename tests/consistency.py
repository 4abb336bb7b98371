"""Whole-database consistency of trades, payments, contracts and the ledger (after faults, crashes, races)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select

from exchange.ledger.engine import balance
from exchange.ledger.models import Account, JournalEntry
from exchange.ledger.verify import verify
from exchange.money import fee_for
from trading.models import Contract, Payment, Payout, Signature, Trade


def problems(session: Any) -> list[str]:
    """Everything that disagrees: the ledger's own checks, then each trade's status against its entries,
    escrow, payments and fee, each contract against its trade, and the sellers' and exchange's totals."""
    found: list[str] = []
    result = verify(session)
    if not result["valid"]:
        found.append(f"ledger verify: {result}")
    payable_expected: dict[str, int] = defaultdict(int)
    fees_expected: dict[str, int] = defaultdict(int)
    for trade in session.scalars(select(Trade).order_by(Trade.id)):
        kinds = [e.kind for e in session.scalars(
            select(JournalEntry).where(JournalEntry.trade_id == trade.id).order_by(JournalEntry.seq))]
        escrow = balance(session, owner_id=trade.id, purpose="trade_escrow", currency=trade.currency)
        paid = session.scalars(select(Payment).where(Payment.trade_id == trade.id,
                                                     Payment.status == "succeeded")).all()
        label = f"trade {trade.id} ({trade.status})"
        if trade.status == "awaiting_payment":
            if kinds or trade.paid_amount or escrow or paid:
                found.append(f"{label}: entries {kinds}, paid {trade.paid_amount}, escrow {escrow}, {len(paid)} paid")
        elif trade.status in ("escrowed", "delivered", "disputed"):
            if kinds != ["payment"] or escrow != trade.paid_amount or trade.paid_amount != trade.amount \
                    or len(paid) != 1 or trade.settled_at is not None:
                found.append(f"{label}: entries {kinds}, escrow {escrow}, paid {trade.paid_amount}/{trade.amount}")
        elif trade.status in ("settled", "refunded"):
            settled = trade.paid_amount - trade.refunded_amount
            expected = ["payment"] + (["refund"] if trade.refunded_amount else []) + (["settlement"] if settled else [])
            fee = fee_for(settled, trade.fee_bps) if trade.status == "settled" else 0
            if kinds != expected or escrow != 0 or len(paid) != 1 or trade.fee != fee or trade.settled_at is None:
                found.append(f"{label}: entries {kinds} (expected {expected}), escrow {escrow}, fee {trade.fee}")
            payable_expected[f"{trade.seller_org_id}:{trade.currency}"] += settled - trade.fee
            fees_expected[trade.currency] += trade.fee
        contract = session.get(Contract, trade.contract_id)
        if contract is None or contract.status != "signed":
            found.append(f"{label}: its contract is {contract.status if contract else 'missing'}")
    for payout in session.scalars(select(Payout)):
        payable_expected[f"{payout.org_id}:{payout.currency}"] -= payout.amount
    for account in session.scalars(select(Account).where(Account.purpose == "seller_payable")):
        key = f"{account.owner_id}:{account.currency}"
        if account.balance != payable_expected.pop(key, 0):
            found.append(f"seller payable {key}: {account.balance}")
    found.extend(f"seller payable {k}: no account, expected {v}" for k, v in payable_expected.items() if v)
    for account in session.scalars(select(Account).where(Account.purpose == "exchange_fees")):
        if account.balance != fees_expected.pop(account.currency, 0):
            found.append(f"exchange fees {account.currency}: {account.balance}")
    for contract in session.scalars(select(Contract)):
        trades = session.scalars(select(Trade.id).where(Trade.contract_id == contract.id)).all()
        signers = {s.org_id for s in session.scalars(select(Signature).where(Signature.contract_id == contract.id))}
        both = signers >= {contract.buyer_org_id, contract.seller_org_id}
        if (contract.status == "signed") != (len(trades) == 1) or (contract.status == "signed") != both:
            found.append(f"contract {contract.id} ({contract.status}): {len(trades)} trades, signed by {signers}")
    session.rollback()
    return found


def assert_consistent(app: Any) -> None:
    from exchange.db import db

    with app.app_context():
        found = problems(db.session)
    assert not found, "\n".join(found)
