"""Test-only routes on a separate app (built with the `make_app` fixture), never on the real one:
an injected exception, a body using every shared field type, and endpoints that fail on purpose.
"""

from __future__ import annotations

import time
from typing import Any

from marshmallow import fields
from sqlalchemy import text

from exchange.api import Blueprint
from exchange.db import db, dialect_name
from exchange.errors import Conflict, ValidationFailed
from exchange.fields import MoneySchema, StrictInteger, StrictSchema, Text, UTCDateTime
from exchange.identity import audit
from exchange.principal import current_principal

PREFIX = "/api/v1/_test"


class ValuesSchema(StrictSchema):
    price = fields.Nested(MoneySchema)
    count = StrictInteger(minimum=0)
    at = UTCDateTime()
    label = Text(max_length=50)


class EffectSchema(StrictSchema):
    note = Text(required=True, max_length=200)
    delay = fields.Float(load_default=0.0)


def _api(app: Any) -> Any:
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"]


def build(make_app: Any, **overrides: Any) -> tuple[Any, dict[str, int]]:
    """A fresh app with the test routes; returns it and the per-route call counters."""
    app = make_app(**overrides)
    calls: dict[str, int] = {"flaky": 0}
    blp = Blueprint("testonly", __name__, url_prefix=PREFIX)

    @blp.route("/boom", methods=["GET", "POST"])
    def boom() -> Any:
        raise RuntimeError("internal detail: password=hunter2 at /srv/secret/path.py")

    @blp.route("/values", methods=["POST"])
    @blp.arguments(ValuesSchema)
    @blp.response(201, ValuesSchema)
    def values(data: dict[str, Any]) -> Any:
        return data

    @blp.route("/flaky/<mode>", methods=["POST"])
    @blp.response(201)
    def flaky(mode: str) -> Any:
        """Fails the first time (409 or 500), succeeds afterwards: shows what is not stored."""
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            if mode == "conflict":
                raise Conflict("try again", next_step="retry the request")
            raise RuntimeError("transient failure")
        return {"call": calls["flaky"]}

    @blp.route("/effect", methods=["POST"])
    @blp.arguments(EffectSchema)
    @blp.response(201)
    def effect(data: dict[str, Any]) -> Any:
        """One countable side effect with no uniqueness to hide a duplicate, then a pause that keeps
        the request in flight while a duplicate arrives."""
        event = audit.record(db.session, current_principal(required=False), "test.effect", "test",
                             "effect", note=data["note"])
        db.session.flush()
        time.sleep(data["delay"])
        return {"event_id": event.id, "note": data["note"]}

    @blp.route("/effect-then-refuse", methods=["POST"])
    @blp.arguments(EffectSchema)
    @blp.response(201)
    def effect_then_refuse(data: dict[str, Any]) -> Any:
        """The countable effect, then a refusal: the refusal must leave no trace of it."""
        audit.record(db.session, current_principal(required=False), "test.effect", "test", "effect",
                     note=data["note"])
        db.session.flush()
        raise ValidationFailed("refused after writing", errors={"note": ["refused after writing"]})

    @blp.route("/db-settings", methods=["GET", "POST"])
    @blp.response(200)
    def db_settings() -> Any:
        """What the request's own transaction runs under (PostgreSQL)."""
        if dialect_name(db.session) != "postgresql":
            return {}
        names = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")
        out = {name: db.session.execute(text(f"SHOW {name}")).scalar_one() for name in names}
        out["application_name"] = db.session.execute(text(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")).scalar_one()
        return out

    @blp.route("/slow-query", methods=["POST"])
    @blp.response(200)
    def slow_query() -> Any:
        """A statement running for two seconds (PostgreSQL), to meet the statement timeout."""
        db.session.execute(text("SELECT pg_sleep(2)"))
        return {}

    _api(app).register_blueprint(blp)
    return app, calls
