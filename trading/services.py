"""Trading's periodic jobs and metrics, registered on the app by `trading.init_app`."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import metrics
from trading import payments, settlement
from trading.models import Contract, Trade


def stripe_job(session: Session, what: str) -> str:
    if not current_app.config.get("STRIPE_API_KEY"):
        return "stripe not configured"
    if what == "reconcile":
        return f"{payments.reconcile_stripe(session)} silent Stripe payments reconciled"
    return f"{settlement.send_transfers(session)} payout Transfers sent"


def trade_metrics(session: Session) -> list:
    """Trades and contracts by status, counted at each scrape of /metrics."""
    trades = session.execute(select(Trade.status, func.count()).group_by(Trade.status)).all()
    contracts = session.execute(select(Contract.status, func.count()).group_by(Contract.status)).all()
    return [metrics.labelled_gauge("datafair_trades", "Trades by status", "status", trades),
            metrics.labelled_gauge("datafair_contracts", "Contracts by status", "status", contracts)]

