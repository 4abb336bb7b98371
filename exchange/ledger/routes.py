"""Ledger read API: accounts, entries by trade, verify (writes happen only through trading's steps)."""

from __future__ import annotations

from typing import Any

from exchange.api import AUTH, Blueprint, log_page, paginate
from exchange.db import db
from exchange.ledger import services
from exchange.ledger.schemas import (
    ACCOUNT_PAGE_EXAMPLE,
    ENTRY_CURSOR_EXAMPLE,
    ENTRY_PAGE_EXAMPLE,
    VERIFY_EXAMPLE,
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
@blp.response(200, AccountPageSchema, example=ACCOUNT_PAGE_EXAMPLE)
@blp.doc(security=AUTH, operationId="listLedgerAccounts")
@blp.problems(401, 422)
def list_accounts(args: dict[str, Any]) -> Any:
    """List ledger accounts and their balances.

    Any authenticated user: the accounts their organization owns (e.g. its `buyer_funding` and
    `seller_payable` per currency); operators every account (one owner's with `owner_id`). One
    balance per owner, purpose and currency, in minor units (debit positive, credit negative),
    filtered by `currency` and `purpose`. Changes nothing (the ledger is written only by trading's
    steps); 422 for an unknown currency or purpose."""
    stmt = services.list_accounts(principal=current_principal(), currency=args.get("currency"),
                                  purpose=args.get("purpose"), owner_id=args.get("owner_id"))
    return paginate(db.session, stmt, page=args["page"], per_page=args["per_page"])


@blp.route("/entries", methods=["GET"])
@blp.arguments(EntryListArgsSchema, location="query")
@blp.response(200, EntryPageSchema, examples={"page": {"value": ENTRY_PAGE_EXAMPLE},
                                               "cursor": {"value": ENTRY_CURSOR_EXAMPLE}})
@blp.doc(security=AUTH, operationId="listLedgerEntries")
@blp.problems(401, 404, 422)
def list_entries(args: dict[str, Any]) -> Any:
    """List journal entries.

    Operators see every entry (optionally one trade's, `trade_id`); the parties of a trade its
    entries (`trade_id` required: 422 without it), in `seq` order, filtered by `kind`. Each entry's
    postings sum to zero per currency; amounts are signed minor units (debit positive, credit
    negative); `prev_hash` and `hash` chain the entries. Entries are never edited (a correction is a
    `reversal` entry). 404 for a trade the caller cannot see. Changes nothing. Pages by number
    (`page`, `per_page`, with `total`) or, given `after` or `limit`, by cursor in `seq` order (`next`:
    pass it as `after`; entries appended meanwhile come on the following pages, none skipped or repeated)."""
    stmt = services.list_entries(db.session, principal=current_principal(), trade_id=args.get("trade_id"),
                               kind=args.get("kind"))
    return log_page(db.session, stmt, args, order=services.ENTRY_ORDER)


@blp.route("/verify", methods=["GET"])
@blp.response(200, VerifySchema, example=VERIFY_EXAMPLE)
@blp.doc(security=AUTH, operationId="getLedgerVerification")
@blp.problems(401, 403)
def verify() -> Any:
    """Verify the ledger (operators).

    Operators only (403 for everyone else): recomputes the hash chain, every entry's balance and
    every cached account balance, in one snapshot. Answers 200 either way; `valid` is false and
    `first_bad_seq` names the first bad entry when not, with up to 100 `problems` listed
    (`problem_count` counts them all). Changes nothing."""
    return services.verify_as(db.session, principal=current_principal())
