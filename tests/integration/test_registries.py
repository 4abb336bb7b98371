"""Names a higher layer owns are registered on each app by its init_app, never in module globals."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import CheckConstraint, inspect

import trading
from exchange import metrics
from exchange.db import db
from exchange.events import outbox
from exchange.identity import demo
from exchange.jobs import scheduler as jobs
from exchange.ledger import engine as ledger
from exchange.ledger.models import Purpose
from exchange.payments import PROVIDER_NAMES
from trading.models import Payment
from trading.states import TRADE_TRANSITIONS, TradeStatus


def test_emit_refuses_an_event_type_no_layer_registered(session):
    with pytest.raises(outbox.UnknownEventType, match=r"'trade\.vanished'.*register_event_types"):
        outbox.emit(session, event_type="trade.vanished", org_ids=["org_a"], payload={})


def test_every_status_a_trade_moves_to_has_a_registered_event_type(app):
    registered = outbox.event_types(app)
    targets = {target for targets in TRADE_TRANSITIONS.values() for target in targets}
    # Every status but the initial one is a target of a move (settlement emits trade.<target> there).
    assert targets == set(TradeStatus) - {TradeStatus.AWAITING_PAYMENT}
    for status in targets:
        assert f"trade.{status}" in registered
    assert trading.trade_event_types() == {f"trade.{s}" for s in targets}


def test_the_exchange_owns_only_its_own_event_types(app):
    assert {"organization.verified"} == outbox.EXCHANGE_EVENT_TYPES
    assert outbox.event_types(app) > outbox.EXCHANGE_EVENT_TYPES


def test_the_payment_provider_check_comes_from_the_payments_registry():
    checks = {str(c.sqltext) for c in Payment.__table__.constraints if isinstance(c, CheckConstraint)}
    assert "provider IN (" + ", ".join(repr(p) for p in PROVIDER_NAMES) + ")" in checks
    assert "provider IN ('manual', 'stripe')" in checks  # no migration: the values did not change


def test_the_ledger_owns_only_generic_purposes_and_trading_registers_its_own(app):
    from exchange.ledger.models import LEDGER_PURPOSES

    assert {p.name for p in LEDGER_PURPOSES} == {"exchange_fees", "provider_clearing", "payouts_clearing"}
    assert set(ledger.purposes(app)) == {p.name for p in (*LEDGER_PURPOSES, *trading.settlement.PURPOSES)}
    with pytest.raises(ValueError, match="trade_escrow"):
        ledger.register_purposes(app, [Purpose("trade_escrow", "trade", False, "not a money holder")])


def test_the_databases_purpose_check_accepts_exactly_the_registered_purposes(app):
    """ck_ledger_accounts_purpose comes from the migrations, the purposes from the layers' init_app:
    a purpose registered without a migration (or a migration without a registration) fails here."""
    with app.app_context():
        checks = {c["name"]: c["sqltext"] for c in inspect(db.engine).get_check_constraints("ledger_accounts")}
    accepted = set(re.findall(r"'([a-z_]+)'", checks["ck_ledger_accounts_purpose"]))
    assert accepted == set(ledger.purposes(app))


def test_registries_are_per_app(app, make_app):
    other = make_app()

    def job(_session: Any) -> str:
        return "only on one app"

    def collector(_session: Any) -> list:
        return []

    def nudge() -> None:
        pass

    def checker(_session: Any, _principal: Any, _trade_id: str) -> bool:
        return True

    jobs.register_periodic(app, "test.only_here", job)
    metrics.register_collector(app, "test.only_here", collector)
    ledger.register_entry_access(app, checker)
    outbox.register_event_types(app, {"test.only_here"})
    outbox.on_committed_events(app, nudge)
    try:
        assert "test.only_here" in jobs.registered("sweep", app)
        assert "test.only_here" not in jobs.registered("sweep", other)
        assert "test.only_here" in metrics.collectors(app)
        assert "test.only_here" not in metrics.collectors(other)
        assert checker in ledger.entry_access_checkers(app)
        assert checker not in ledger.entry_access_checkers(other)
        assert "test.only_here" in outbox.event_types(app)
        assert "test.only_here" not in outbox.event_types(other)
        assert nudge in outbox.committed_event_hooks(app)
        assert nudge not in outbox.committed_event_hooks(other)
        # Both apps got the domains' registrations from their own init_app.
        for each in (app, other):
            assert {"certification.notice_periods", "certification.certificate_expiry", "trading.procurement_expiry",
                    "trading.offer_expiry", "trading.auto_acceptance", "idempotency.purge"} <= set(
                jobs.registered("sweep", each))
            assert {"trading", "ledger", "organizations", "webhooks", "job_queue"} <= set(metrics.collectors(each))
            assert "trade.settled" in outbox.event_types(each)
            assert trading.settlement.can_read_entries in ledger.entry_access_checkers(each)
            assert jobs._nudge_webhooks in outbox.committed_event_hooks(each)
    finally:
        app.extensions[outbox.AFTER_COMMIT_EXTENSION].remove(nudge)
        jobs.unregister_periodic(app, "test.only_here")
        metrics.unregister_collector(app, "test.only_here")
        app.extensions[ledger.ENTRY_ACCESS_EXTENSION].remove(checker)
        app.extensions[outbox.EVENT_TYPES_EXTENSION].discard("test.only_here")


def test_the_openapi_enum_lists_the_registered_event_types(app):
    with app.test_client() as c:
        spec = c.get("/api/v1/openapi.json").get_json()
    names = sorted(outbox.event_types(app))
    create = spec["components"]["schemas"]["WebhookEndpointCreate"]["properties"]["events"]
    assert create["items"]["enum"] == names and create["maxItems"] == len(names) == 28
    assert create["minItems"] == 1
    for component in ("WebhookEndpoint", "WebhookEndpointCreated"):
        assert spec["components"]["schemas"][component]["properties"]["events"]["items"]["enum"] == names


def test_each_layer_registers_its_demo_seeder_and_they_run_in_layer_order(app, make_app):
    assert list(demo.seeders(app)) == ["listings", "certification", "trading", "delivery"]
    other = make_app()
    demo.register_seeder(other, "test.only_here", lambda session, orgs: None)
    assert "test.only_here" not in demo.seeders(app)
