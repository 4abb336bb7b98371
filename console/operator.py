"""Operator pages (placeholder until filled)."""

from __future__ import annotations

from typing import Any

from console.web import bp
from exchange.errors import NotFound


@bp.route("/console/queue", methods=["GET"])
def queue() -> Any:
    raise NotFound("not built yet")


@bp.route("/console/ledger", methods=["GET"])
def ledger() -> Any:
    raise NotFound("not built yet")
