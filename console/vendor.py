"""Vendor pages (placeholder until filled)."""

from __future__ import annotations

from typing import Any

from console.web import bp
from exchange.errors import NotFound


@bp.route("/console/products", methods=["GET"])
def products() -> Any:
    raise NotFound("not built yet")
