"""Identity: organizations, users, members, organization keys, tokens, audit.

`init_app` installs the principal loader the request cycle asks for the caller, the routes of
organizations, auth, me, audit and health, `create-operator`, and the organizations gauge."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask
from prometheus_client.core import Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exchange import metrics


def _organizations(session: Session) -> Iterable[Metric]:
    from exchange.identity.models import Organization

    rows = session.execute(select(Organization.status, func.count()).group_by(Organization.status)).all()
    yield metrics.labelled_gauge("datafair_organizations", "Organizations by status", "status", rows)


def init_app(app: Flask, api: Any) -> None:
    from exchange import principal
    from exchange.identity import auth, cli, routes

    principal.register_loader(app, load=auth.load_principal, peek_user_id=auth.peek_user_id)
    api.register_blueprint(routes.blp)
    api.register_blueprint(routes.root)
    cli.init_app(app)
    metrics.register_collector(app, "organizations", _organizations)
