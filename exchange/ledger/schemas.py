"""Schemas of the ledger's read API (accounts, entries, verify)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from exchange.fields import LogPageArgsSchema, PaginationArgsSchema, Text, UTCDateTime, log_page_schema, page_schema
from exchange.ledger import engine
from exchange.ledger.models import ENTRY_KINDS
from exchange.money import CURRENCIES


def _registered_purpose(value: str) -> None:
    """One of the purposes the layers registered on this app (documented as the enum by
    `exchange.ledger.document_purposes`)."""
    validate.OneOf(list(engine.purposes()))(value)


class AccountListArgsSchema(PaginationArgsSchema):
    currency = fields.String(validate=validate.OneOf(CURRENCIES))
    purpose = fields.String(validate=_registered_purpose)
    owner_id = Text(max_length=80, metadata={"description": "operators: one owner's accounts"})


class AccountSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(metadata={"description": "purpose:owner_id:currency"})
    owner_id = fields.String()
    purpose = fields.String()
    currency = fields.String()
    balance = fields.Integer(metadata={"description": "minor units; debit positive, credit negative"})
    non_negative = fields.Boolean(metadata={"description": "the balance can never go below zero"})
    version = fields.Integer(metadata={"description": "incremented by every entry that moves the balance"})
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class EntryListArgsSchema(LogPageArgsSchema):
    trade_id = Text(max_length=80, metadata={"description": "required unless the caller is an operator"})
    kind = fields.String(validate=validate.OneOf(ENTRY_KINDS))


class PostingSchema(Schema):
    account = fields.String(attribute="account.name",
                            metadata={"description": "readable account name purpose:owner_id:currency"})
    account_id = fields.String()
    currency = fields.String()
    amount = fields.Integer(metadata={"description": "signed minor units: debit positive, credit negative"})


class EntrySchema(Schema):
    id = fields.String()
    seq = fields.Integer()
    trade_id = fields.String(allow_none=True)
    kind = fields.String(metadata={"description": ", ".join(ENTRY_KINDS)})
    created_at = UTCDateTime()
    prev_hash = fields.String()
    hash = fields.String(metadata={"description": (
        "sha256 hex of RFC 8785 {seq, kind, trade_id, created_at, postings, metadata} followed by "
        "prev_hash; postings exactly as listed here")})
    metadata = fields.Dict(attribute="meta")
    reverses_entry_id = fields.String(allow_none=True)
    postings = fields.List(fields.Nested(PostingSchema))


class VerifyProblemSchema(Schema):
    seq = fields.Integer(allow_none=True)
    account = fields.String(allow_none=True)
    problem = fields.String()


class VerifySchema(Schema):
    valid = fields.Boolean()
    entries = fields.Integer()
    balanced = fields.Boolean()
    chain_valid = fields.Boolean()
    balances_valid = fields.Boolean()
    head = fields.String(allow_none=True, metadata={"description": "hash of the last entry"})
    head_seq = fields.Integer()
    first_bad_seq = fields.Integer(allow_none=True)
    accounts = fields.Integer()
    problem_count = fields.Integer()
    problems = fields.List(fields.Nested(VerifyProblemSchema))


AccountPageSchema = page_schema(AccountSchema, "LedgerAccountPage")
EntryPageSchema = log_page_schema(EntrySchema, "LedgerEntryPage")


# OpenAPI examples (shaped exactly like their schema; ids as `exchange.db.new_id` makes them).
_BUYER_ORG_ID = "org_0193a4c2e1f08b6d2c4e9a7f13b5d8e0"
_SELLER_ORG_ID = "org_01939b7e5d3c2a1f0e9d8c7b6a594837"
_TRADE_ID = "trd_0193a6b0f1c27e8f9a0b1c2d3e4f5a6b"
_FUNDING = {"id": "acc_0193a6b0f2a13b4c5d6e7f8091a2b3c4", "name": f"buyer_funding:{_BUYER_ORG_ID}:CNY"}
_ESCROW = {"id": "acc_0193a6b0f2a24c5d6e7f8091a2b3c4d5", "name": f"trade_escrow:{_TRADE_ID}:CNY"}

ACCOUNT_PAGE_EXAMPLE = {
    "items": [{
        "id": _FUNDING["id"],
        "name": _FUNDING["name"],
        "owner_id": _BUYER_ORG_ID,
        "purpose": "buyer_funding",
        "currency": "CNY",
        "balance": -1200000,
        "non_negative": False,
        "version": 3,
        "created_at": "2026-12-01T09:30:01Z",
        "updated_at": "2026-12-01T11:02:47Z",
    }],
    "total": 1, "page": 1, "per_page": 20,
}
ENTRY_PAGE_EXAMPLE = {
    "items": [{
        "id": "jnl_0193a6b0f2c57f8091a2b3c4d5e6f708",
        "seq": 1287,
        "trade_id": _TRADE_ID,
        "kind": "payment",
        "created_at": "2026-12-01T09:30:01Z",
        "prev_hash": "480d3142b2307d4ab15b33b34671e6b9d2673e059d9d8cdf4fa1f4fbb118764c",
        "hash": "f6f3c6745db9c4ad9a6a0c240a0ad418a1dc47e31349d0c48ef536fbd4990efb",
        "metadata": {"payment_id": "pay_0193a6a8e4d13c4d5e6f708192a3b4c5", "provider": "manual"},
        "reverses_entry_id": None,
        "postings": [
            {"account": _FUNDING["name"], "account_id": _FUNDING["id"], "currency": "CNY", "amount": -400000},
            {"account": _ESCROW["name"], "account_id": _ESCROW["id"], "currency": "CNY", "amount": 400000},
        ],
    }],
    "total": 1, "page": 1, "per_page": 20,
}
# `?trade_id=...&limit=1`: one entry, more to follow after it.
ENTRY_CURSOR_EXAMPLE = {"items": ENTRY_PAGE_EXAMPLE["items"], "next": ENTRY_PAGE_EXAMPLE["items"][0]["id"], "limit": 1}
VERIFY_EXAMPLE = {
    "valid": True,
    "entries": 1287,
    "balanced": True,
    "chain_valid": True,
    "balances_valid": True,
    "head": "f6f3c6745db9c4ad9a6a0c240a0ad418a1dc47e31349d0c48ef536fbd4990efb",
    "head_seq": 1287,
    "first_bad_seq": None,
    "accounts": 214,
    "problem_count": 0,
    "problems": [],
}
