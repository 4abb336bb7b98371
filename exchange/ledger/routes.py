"""Ledger read API: accounts, entries by trade, verify (writes happen only through trading's steps)."""

from __future__ import annotations

from typing import Any

from exchange.api import AUTH, Blueprint, paginate
from exchange.db import db
from exchange.ledger import services
from exchange.ledger.schemas import (
    AccountListArgsSchema,
    AccountPageSchema,
    EntryListArgsSchema,
    EntryPageSchema,
    VerifySchema,
)
from exchange.principal import current_principal

blp = Blueprint("ledger", __name__, url_prefix="/api/v1/ledger", description="Double-entry ledger")


@blp.route("/accounts", methods=["GET"])
@blp.arguments(AccountListArgsSchema, location="query")
@blp.response(200, AccountPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 422)
def list_accounts(args: dict[str, Any]) -> Any:
    """Balances per account and currency: the caller organization's accounts; operators all."""
    stmt = services.list_accounts(principal=current_principal(), currency=args.get("currency"),
                                  purpose=args.get("purpose"), owner_id=args.get("owner_id"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/entries", methods=["GET"])
@blp.arguments(EntryListArgsSchema, location="query")
@blp.response(200, EntryPageSchema)
@blp.doc(security=AUTH)
@blp.problems(401, 404, 422)
def list_entries(args: dict[str, Any]) -> Any:
    """Journal entries in `seq` order: operators all (optionally one trade's); the parties of a
    trade its entries (`trade_id` required). Posting amounts are signed: debit positive, credit negative.
    """
    stmt = services.list_entries(db.session, principal=current_principal(), trade_id=args.get("trade_id"),
                               kind=args.get("kind"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/verify", methods=["GET"])
@blp.response(200, VerifySchema)
@blp.doc(security=AUTH)
@blp.problems(401, 403)
def verify() -> Any:
    """Operators: recompute the hash chain, every entry's balance and every cached account balance.

    Answers 200 either way; `valid` is false and `first_bad_seq` names the first bad entry when not.
    """
    return services.verify_as(db.session, principal=current_principal())
