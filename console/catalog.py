"""Public catalog pages (placeholder until filled): catalog, product, certificate, fair, stall."""

from __future__ import annotations

from typing import Any

from console.web import bp
from exchange.errors import NotFound


@bp.route("/catalog", methods=["GET"])
def catalog() -> Any:
    raise NotFound("not built yet")


@bp.route("/fairs/<fair_id>", methods=["GET"])
def fair_page(fair_id: str) -> Any:
    raise NotFound("not built yet")
