"""Schemas of the ledger's read API (accounts, entries, verify)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from exchange.fields import PaginationArgsSchema, Text, UTCDateTime, page_schema
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


class EntryListArgsSchema(PaginationArgsSchema):
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
EntryPageSchema = page_schema(EntrySchema, "LedgerEntryPage")
