"""The double-entry ledger: accounts, hash-chained journal entries, signed postings, verify.

`exchange.ledger.engine` (post_entry, and post_entries for many at once: one code path) is the only
writer of the ledger tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import metrics


def _ledger(session: Session) -> Iterable[Metric]:
    from exchange.ledger.models import JournalEntry

    head = session.execute(select(func.max(JournalEntry.seq))).scalar()
    yield GaugeMetricFamily("datafair_ledger_entries", "Journal entries in the ledger (the chain's head seq)",
                            value=float(head or 0))


def init_app(app: Flask, api: Any) -> None:
    from exchange.ledger import cli, engine, routes
    from exchange.ledger.models import LEDGER_PURPOSES

    api.register_blueprint(routes.blp)
    cli.init_app(app)
    engine.register_purposes(app, LEDGER_PURPOSES)
    metrics.register_collector(app, "ledger", _ledger)


def document_purposes(app: Flask, api: Any) -> None:
    """Write the account purposes the layers registered on `app` into its OpenAPI document (the
    enum of `GET /ledger/accounts?purpose=`). Called once every layer's init_app ran."""
    from exchange.ledger import engine

    names = list(engine.purposes(app))
    for parameter in api.spec.to_dict()["paths"]["/api/v1/ledger/accounts"]["get"]["parameters"]:
        if parameter["name"] == "purpose":
            parameter["schema"]["enum"] = names
