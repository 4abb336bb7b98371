"""Data products, revisions, catalog search, fairs and stalls."""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask, api: Any) -> None:
    """Listings' routes: catalog, revisions, search, fairs and stalls (no jobs, events or metrics), and
    its demo seeder."""
    from exchange.identity import demo as exchange_demo
    from listings import demo, routes

    api.register_blueprint(routes.blp)
    api.register_blueprint(routes.fairs_blp)
    exchange_demo.register_seeder(app, "listings", demo.seed)
