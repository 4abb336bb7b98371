"""Trading's entry points for the composition root: the periodic sweep."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy.orm import Session

from trading import offers, procurements, settlement


def sweep(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Persist time-based states (expired procurements and offers, auto-accepted deliveries) and,
    with Stripe configured, make committed payouts' Transfers and reconcile silent PaymentIntents."""
    done = {
        "procurements_expired": procurements.sweep(session, now),
        "offers_expired": offers.sweep(session, now),
        "trades_auto_settled": settlement.sweep(session, now),
    }
    if current_app.config.get("STRIPE_API_KEY"):
        done["payments_reconciled"] = settlement.reconcile_stripe(session)
        done["transfers_sent"] = settlement.send_transfers(session)
    return done
