"""Certification reviews, certificates, objections and the cross-border white list."""

from __future__ import annotations

from typing import Any

from flask import Flask

EVENT_TYPES = frozenset({
    "certification.decided",    # a certification ended approved, rejected or changes_requested
    "certificate.suspended",
    "certificate.revoked",
    "registration.filed",       # a rights registration was numbered and signed (holder and, for a licence, seller)
})


def init_app(app: Flask, api: Any) -> None:
    """Routes, the sweep of ended notice periods and certificate expiry, and the event types."""
    from certification import certificates, demo, routes, services
    from exchange.events import outbox
    from exchange.identity import demo as exchange_demo
    from exchange.jobs import scheduler as jobs

    api.register_blueprint(routes.blp)

    jobs.register_sweep(app, "certification.notice_periods", due=services.notices_due,
                        apply=services.conclude_notice, report="{} notice periods concluded")
    jobs.register_sweep(app, "certification.certificate_expiry", due=certificates.EXPIRY.due_ids,
                        apply=certificates.EXPIRY.apply, report="{} certificates expired")
    outbox.register_event_types(app, EVENT_TYPES)
    exchange_demo.register_seeder(app, "certification", demo.seed)
