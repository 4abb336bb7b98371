"""Offers received and sent (placeholder until filled)."""

from __future__ import annotations

from typing import Any

from console.web import bp
from exchange.errors import NotFound


@bp.route("/console/offers", methods=["GET"])
def offers() -> Any:
    raise NotFound("not built yet")
