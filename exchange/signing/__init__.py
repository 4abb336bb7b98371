"""The exchange's own signing keys: Ed25519, stored encrypted, rotated, published as a JWKS."""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask, api: Any) -> None:
    from exchange.signing import cli, models, routes  # noqa: F401 - models registers the keys' table

    api.register_blueprint(routes.wellknown)
    cli.init_app(app)
