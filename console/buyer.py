"""Buyer pages (placeholder until filled)."""

from __future__ import annotations

from typing import Any

from console.web import bp
from exchange.errors import NotFound


@bp.route("/console/procurements", methods=["GET"])
def procurements() -> Any:
    raise NotFound("not built yet")


@bp.route("/console/trades", methods=["GET"])
def trades() -> Any:
    raise NotFound("not built yet")
