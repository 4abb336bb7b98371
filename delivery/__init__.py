"""Delivery: entitlements re-checked at every access, releases on real storage, signed downloads."""

from __future__ import annotations

from typing import Any

from flask import Flask

EVENT_TYPES = frozenset({
    "release.published",        # a release's files are frozen and signed; covered trades are delivered
    "release.withdrawn",
})


def entitlement_event_types() -> frozenset[str]:
    """`entitlement.<status>` for every status (derived from the table, so none is forgotten)."""
    from delivery.states import EntitlementStatus

    return frozenset(f"entitlement.{s}" for s in EntitlementStatus)


def init_app(app: Flask, api: Any) -> None:
    """Routes; trading's hooks (escrow creates the entitlement, disputes and resolutions change it,
    declared deliveries and auto-acceptance ask first); the entitlement sweep; event types; the demo."""
    from delivery import demo, entitlements, evidence, metering, routes
    from exchange import hooks
    from exchange.events import outbox
    from exchange.http import exempt_from_suspension, stream_body
    from exchange.identity import demo as exchange_demo
    from exchange.jobs import scheduler as jobs

    api.register_blueprint(routes.blp)
    app.register_blueprint(routes.data_plane)
    if app.config["DATAFAIR_ENV"] == "development":
        from delivery import demo_upstream

        app.register_blueprint(demo_upstream.blp)  # the demo's vendor API, for `make run` offline
    stream_body(app, "delivery.upload_file")
    stream_body(app, "gateway.gateway_call")
    # A suspended buyer's link request is refused by the entitlement check, with its reason, and logged.
    exempt_from_suspension(app, "delivery.create_download")
    hooks.register(app, "trade_escrowed", entitlements.on_trade_escrowed)
    hooks.register(app, "trade_disputed", entitlements.on_trade_changed)
    hooks.register(app, "trade_resolved", entitlements.on_trade_resolved)
    hooks.register(app, "dossier_changed", entitlements.on_dossier_changed)
    hooks.register(app, "trade_delivery_declared", evidence.declared_delivery_refusal)
    hooks.register(app, "trade_auto_accepting", entitlements.auto_acceptance_refusal)
    jobs.register_sweep(app, "delivery.entitlements", due=entitlements.sweep_due, apply=entitlements.refresh,
                        report="{} entitlements changed status")
    jobs.register_sweep(app, "delivery.usage_periods", due=metering.periods_due, apply=metering.close_period,
                        report="{} usage periods closed")
    jobs.register_sweep(app, "delivery.per_call_endings", due=metering.endings_due, apply=metering.settle_ending,
                        report="{} per_call trades settled at their entitlement's end")
    hooks.register(app, "per_call_resolving", metering.on_per_call_resolving)
    hooks.register(app, "per_call_refunded_calls", metering.on_per_call_refunded_calls)
    outbox.register_event_types(app, EVENT_TYPES | entitlement_event_types())
    exchange_demo.register_seeder(app, "delivery", demo.seed)
