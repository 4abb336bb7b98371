"""Procurement, matching, offers, contracts, trades and settlement."""

from __future__ import annotations

from typing import Any

from flask import Flask

EVENT_TYPES = frozenset({
    "procurement.matched",      # a procurement has new matching products
    "offer.received",
    "offer.countered",
    "offer.accepted",
    "contract.signed",          # both parties signed; the trade exists
    "payout.sent",
})


def trade_event_types() -> frozenset[str]:
    """`trade.<status>` for every status a trade moves to (settlement emits one at each move);
    derived from the transition table, so a new status cannot be forgotten."""
    from trading.states import TRADE_TRANSITIONS

    return frozenset(f"trade.{target}" for targets in TRADE_TRANSITIONS.values() for target in targets)


def init_app(app: Flask, api: Any) -> None:
    """Routes; expiry, auto-acceptance and Stripe jobs; event types; trading's ledger account
    purposes and who may read a trade's ledger entries; trades and contracts by status at each
    scrape of /metrics; the demo seeder."""
    from exchange import metrics
    from exchange.events import outbox
    from exchange.identity import demo as exchange_demo
    from exchange.jobs import scheduler as jobs
    from exchange.ledger import engine as ledger
    from trading import demo, dossiers, offers, payments, procurements, routes, services, settlement, subscriptions

    api.register_blueprint(routes.blp)
    from trading import report_routes  # the regulator's trade report (API.md Compliance)
    api.register_blueprint(report_routes.blp)
    jobs.register_sweep(app, "trading.procurement_expiry", due=procurements.EXPIRY.due_ids,
                        apply=procurements.EXPIRY.apply, report="{} procurements expired")
    jobs.register_sweep(app, "trading.offer_expiry", due=offers.EXPIRY.due_ids, apply=offers.EXPIRY.apply,
                        report="{} offers expired")
    jobs.register_sweep(app, "trading.auto_acceptance", due=settlement.auto_acceptance_due,
                        apply=settlement.auto_accept, report="{} trades auto-settled")
    # Subscriptions (API.md): the next period's trade at renews_at, unpaid trades cancelled past their
    # deadline (a period's grace, DATAFAIR_PAYMENT_DAYS), the end after the last period.
    jobs.register_sweep(app, "trading.subscription_renewal", due=subscriptions.renewal_due, apply=subscriptions.renew,
                        report="{} subscriptions renewed or lapsed")
    jobs.register_sweep(app, "trading.unpaid_trades", due=payments.unpaid_due, apply=payments.cancel_overdue,
                        report="{} unpaid trades cancelled")
    jobs.register_sweep(app, "trading.subscription_end", due=subscriptions.end_due, apply=subscriptions.end,
                        report="{} subscriptions ended")
    # Cross-border dossiers (API.md Compliance): awaiting filing past the due date -> overdue.
    jobs.register_sweep(app, "trading.dossier_overdue", due=dossiers.OVERDUE_EXPIRY.due_ids,
                        apply=dossiers.OVERDUE_EXPIRY.apply,
                        report="{} dossiers overdue")
    jobs.register_periodic(app, "trading.stripe_transfers", lambda s: services.stripe_job(s, "transfers"))
    jobs.register_periodic(app, "trading.stripe_reconciliation", lambda s: services.stripe_job(s, "reconcile"),
                           group="reconcile")
    outbox.register_event_types(app, EVENT_TYPES | trade_event_types() | subscriptions.EVENT_TYPES
                                | frozenset(dossiers.EVENT_TYPES))
    ledger.register_purposes(app, settlement.PURPOSES)
    ledger.register_entry_access(app, settlement.can_read_entries)
    metrics.register_collector(app, "trading", services.trade_metrics)
    exchange_demo.register_seeder(app, "trading", demo.seed)
