"""Certification reviews, certificates, objections and the cross-border white list."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

EVENT_TYPES = frozenset({
    "certification.decided",    # a certification ended approved, rejected or changes_requested
    "certificate.suspended",
    "certificate.revoked",
})


def init_app(app: Flask, api: Any) -> None:
    """Routes, the sweep of ended notice periods and certificate expiry, and the event types."""
    from certification import routes, services
    from exchange.events import outbox
    from exchange.jobs import scheduler as jobs

    api.register_blueprint(routes.blp)

    def run(session: Session) -> str:
        done = services.sweep(session)
        return (f"{done['notices_approved']} notice periods concluded, "
                f"{done['certificates_expired']} certificates expired")

    jobs.register_periodic(app, "certification.sweep", run)
    outbox.register_event_types(app, EVENT_TYPES)
