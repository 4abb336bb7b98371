"""Trading's periodic jobs, registered with the kernel's job runner by the composition root."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import metrics
from exchange.jobs import scheduler as jobs
from trading import offers, procurements, settlement
from trading.models import Contract, Trade


def _stripe(session: Session, what: str) -> str:
    if not current_app.config.get("STRIPE_API_KEY"):
        return "stripe not configured"
    if what == "reconcile":
        return f"{settlement.reconcile_stripe(session)} silent Stripe payments reconciled"
    return f"{settlement.send_transfers(session)} payout Transfers sent"


def register_jobs() -> None:
    """Expiry of procurements and offers, auto-acceptance of deliveries, Stripe payouts and
    reconciliation: idempotent, each run in its own transaction by `exchange.jobs`."""
    jobs.register_periodic("trading.procurement_expiry", lambda s: f"{procurements.sweep(s)} procurements expired")
    jobs.register_periodic("trading.offer_expiry", lambda s: f"{offers.sweep(s)} offers expired")
    jobs.register_periodic("trading.auto_acceptance", lambda s: f"{settlement.sweep(s)} trades auto-settled")
    jobs.register_periodic("trading.stripe_transfers", lambda s: _stripe(s, "transfers"))
    jobs.register_periodic("trading.stripe_reconciliation", lambda s: _stripe(s, "reconcile"), group="reconcile")


def _trade_metrics(session: Session) -> list:
    trades = session.execute(select(Trade.status, func.count()).group_by(Trade.status)).all()
    contracts = session.execute(select(Contract.status, func.count()).group_by(Contract.status)).all()
    return [metrics.labelled_gauge("datafair_trades", "Trades by status", "status", trades),
            metrics.labelled_gauge("datafair_contracts", "Contracts by status", "status", contracts)]


def register_metrics() -> None:
    """Trades and contracts by status, counted at each scrape of /metrics."""
    metrics.register_collector("trading", _trade_metrics)
