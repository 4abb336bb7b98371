"""Marshmallow schemas of procurements, matches, offers, contracts, trades and statistics."""

from __future__ import annotations

from marshmallow import Schema, fields, post_dump, validate

from exchange.fields import (
    Boolean,
    Composite,
    MoneySchema,
    OneTimeSecret,
    PaginationArgsSchema,
    StrictInteger,
    StrictSchema,
    Text,
    UTCDateTime,
    money_sum_schema,
    page_schema,
)
from exchange.money import CURRENCIES
from exchange.principal import viewer
from listings.states import CATEGORIES, DELIVERY_MODES, LICENSE_SCOPES
from trading.states import ContractStatus, OfferStatus, PaymentStatus, ProcurementStatus, TradeStatus

ID = validate.Length(min=1, max=40)


class BudgetSchema(StrictSchema):
    max_amount = StrictInteger(required=True, minimum=1)
    currency = fields.String(required=True, validate=validate.OneOf(CURRENCIES))


class ProcurementCreateSchema(StrictSchema):
    title = Text(required=True, max_length=200)
    description = Text(required=True, max_length=10_000, multiline=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    keywords = fields.List(Text(max_length=50), load_default=list, validate=validate.Length(max=20))
    budget = fields.Nested(BudgetSchema, required=True)
    delivery_mode = fields.String(allow_none=True, validate=validate.OneOf(DELIVERY_MODES))
    deadline = UTCDateTime(required=True)
    visibility = fields.String(load_default="public", validate=validate.OneOf(("public", "invited")))
    invited_org_ids = fields.List(fields.String(validate=ID), load_default=list, validate=validate.Length(max=50))


class ProcurementSchema(Schema):
    id = fields.String()
    buyer_org_id = fields.String()
    title = fields.String()
    description = fields.String()
    category = fields.String()
    keywords = fields.List(fields.String())
    budget = Composite(max_amount="budget_max_amount", currency="budget_currency")
    delivery_mode = fields.String(allow_none=True)
    deadline = UTCDateTime()
    visibility = fields.String()
    invited_org_ids = fields.List(fields.String(), metadata={"description": "shown to the buyer and operators"})
    status = fields.String()
    created_at = UTCDateTime()

    @post_dump(pass_original=True)
    def _for_viewer(self, data: dict, proc: object, **kw: object) -> dict:
        who = viewer()
        private = who is not None and (who.is_operator or who.org_id == proc.buyer_org_id)
        data["keywords"] = data["keywords"] or []
        data["invited_org_ids"] = (data["invited_org_ids"] or []) if private else []
        return data


class ProcurementArgsSchema(PaginationArgsSchema):
    board = fields.Boolean(load_default=False)
    invited = fields.Boolean(load_default=False)
    status = fields.String(validate=validate.OneOf([s.value for s in ProcurementStatus]))
    category = fields.String(validate=validate.OneOf(CATEGORIES))


class CancelSchema(StrictSchema):
    reason = Text(max_length=2000, multiline=True, allow_none=True)


class MatchArgsSchema(StrictSchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


class MatchSchema(Schema):
    product_id = fields.String()
    score = fields.Float(metadata={"description": "0..1, higher is better"})
    reasons = fields.List(fields.String())


class MatchListSchema(Schema):
    items = fields.List(fields.Nested(MatchSchema))


class ProcurementMatchSchema(Schema):
    procurement_id = fields.String()
    title = fields.String()
    buyer_org_id = fields.String()
    deadline = UTCDateTime()
    score = fields.Float()
    reasons = fields.List(fields.String())


class ProcurementMatchListSchema(Schema):
    items = fields.List(fields.Nested(ProcurementMatchSchema))


class TermsSchema(StrictSchema):
    scope = fields.String(required=True, validate=validate.OneOf(LICENSE_SCOPES))
    duration_days = StrictInteger(required=True, minimum=1, maximum=36_500)
    delivery_mode = fields.String(required=True, validate=validate.OneOf(DELIVERY_MODES))


class OfferCreateSchema(StrictSchema):
    product_id = fields.String(required=True, validate=ID)
    procurement_id = fields.String(allow_none=True, validate=ID)
    price = fields.Nested(MoneySchema, required=True)
    terms = fields.Nested(TermsSchema, required=True)
    expires_at = UTCDateTime(allow_none=True)
    to_org_id = fields.String(allow_none=True, validate=ID)
    message = Text(max_length=2000, multiline=True, allow_none=True)


class CounterSchema(StrictSchema):
    price = fields.Nested(MoneySchema, required=True)
    terms = fields.Nested(TermsSchema, required=True)
    expires_at = UTCDateTime(allow_none=True)
    message = Text(max_length=2000, multiline=True, allow_none=True)


class OfferSchema(Schema):
    id = fields.String()
    thread_id = fields.String()
    parent_id = fields.String(allow_none=True)
    product_id = fields.String()
    product_version = fields.Integer()
    procurement_id = fields.String(allow_none=True)
    from_org_id = fields.String()
    to_org_id = fields.String()
    buyer_org_id = fields.String()
    seller_org_id = fields.String()
    price = Composite(amount="amount", currency="currency")
    terms = fields.Dict()
    message = fields.String(allow_none=True)
    expires_at = UTCDateTime(allow_none=True)
    status = fields.String()
    created_at = UTCDateTime()
    decided_at = UTCDateTime(allow_none=True)


class OfferDetailSchema(OfferSchema):
    thread = fields.List(fields.Nested(OfferSchema))
    contract_id = fields.String(allow_none=True)


class OfferArgsSchema(PaginationArgsSchema):
    role = fields.String(validate=validate.OneOf(("sent", "received")))
    status = fields.String(validate=validate.OneOf([s.value for s in OfferStatus]))


class SignatureViewSchema(Schema):
    org_id = fields.String()
    user_id = fields.String()
    signed_at = UTCDateTime()
    on_site = fields.Boolean()
    fair_id = fields.String(allow_none=True)
    stall_code = fields.String(allow_none=True)
    method = fields.String()
    key_id = fields.String()
    signature = fields.String()


class ContractSchema(Schema):
    id = fields.String()
    number = fields.String()
    offer_id = fields.String()
    procurement_id = fields.String(allow_none=True)
    buyer_org_id = fields.String()
    seller_org_id = fields.String()
    product_id = fields.String()
    product_version = fields.Integer()
    certificate_number = fields.String()
    price = Composite(amount="amount", currency="currency")
    terms = fields.Dict()
    digest = fields.String()
    status = fields.String()
    on_site = fields.Boolean()
    fair_id = fields.String(allow_none=True)
    created_at = UTCDateTime()
    signed_at = UTCDateTime(allow_none=True)
    signatures = fields.List(fields.Nested(SignatureViewSchema))
    trade_id = fields.String(allow_none=True)


class SignatureCreateSchema(StrictSchema):
    on_site = Boolean(load_default=False)
    fair_id = fields.String(allow_none=True, validate=ID)
    stall_code = fields.String(allow_none=True, validate=validate.Length(min=1, max=20))
    key_id = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    signature = fields.String(allow_none=True, validate=validate.Length(min=1, max=128))


class ContractArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in ContractStatus]))


class TradeSchema(Schema):
    id = fields.String()
    contract_id = fields.String()
    buyer_org_id = fields.String()
    seller_org_id = fields.String()
    product_id = fields.String()
    amount = fields.Integer()
    fee = fields.Integer()
    refunded_amount = fields.Integer()
    currency = fields.String()
    status = fields.String()
    on_site = fields.Boolean()
    fair_id = fields.String(allow_none=True)
    created_at = UTCDateTime()
    updated_at = UTCDateTime()
    paid_amount = fields.Integer()
    delivery_reference = fields.String(allow_none=True)
    delivery_sha256 = fields.String(allow_none=True)
    delivered_at = UTCDateTime(allow_none=True)
    settled_at = UTCDateTime(allow_none=True)
    settlement = fields.String(allow_none=True)


class TradeArgsSchema(PaginationArgsSchema):
    status = fields.String(validate=validate.OneOf([s.value for s in TradeStatus]))


MarketVolumeSchema = money_sum_schema(
    "MarketVolumeSchema", "The sum, in this currency, of the money that reached escrow (trades paid), less refunds.")


class CategoryStatsSchema(Schema):
    category = fields.String()
    products = fields.Integer()
    contracts = fields.Integer()


class StatsSchema(Schema):
    products_listed = fields.Integer()
    vendors = fields.Integer()
    contracts_signed = fields.Integer(metadata={"description": "contracts with both signatures, paid or not"})
    volume = fields.List(fields.Nested(MarketVolumeSchema), metadata={
        "description": "per currency, never converted or mixed; only money that reached escrow counts "
                       "(a signed contract nobody paid adds nothing); a currency with none is left out"})
    by_category = fields.List(fields.Nested(CategoryStatsSchema))


ProcurementPageSchema = page_schema(ProcurementSchema, "ProcurementPage")
OfferPageSchema = page_schema(OfferSchema, "OfferPage")
ContractPageSchema = page_schema(ContractSchema, "ContractPage")
TradePageSchema = page_schema(TradeSchema, "TradePage")


class PaymentCreateSchema(StrictSchema):
    provider = fields.String(load_default="manual", validate=validate.OneOf(("manual", "stripe")))


class PaymentSchema(Schema):
    id = fields.String()
    trade_id = fields.String()
    provider = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in PaymentStatus]))
    amount = fields.Integer()
    currency = fields.String()
    provider_ref = fields.String(allow_none=True)
    client_secret = OneTimeSecret(description=(
        "Stripe only: completes the payment in the buyer's browser; shown to the buyer only, while the "
        "payment is pending (GET /payments/{id} shows it to the buyer again, never to the seller or "
        "operators)."))
    created_at = UTCDateTime()
    confirmed_at = UTCDateTime(allow_none=True)
    refund_reason = fields.String(allow_none=True, metadata={"description": (
        "Why this payment's money went back to the buyer: `duplicate` (it succeeded when the payment "
        "was no longer pending or its trade no longer awaited payment; refund_pending, then refunded).")})
    refunded_at = UTCDateTime(allow_none=True)

    @post_dump(pass_original=True)
    def _for_viewer(self, data: dict, payment: object, **kw: object) -> dict:
        who = viewer()
        if who is None or payment.buyer_org_id is None or who.org_id != payment.buyer_org_id:
            data["client_secret"] = None
        elif payment.status != PaymentStatus.PENDING:
            data["client_secret"] = None  # it completes nothing any more (cancelled, paid, refunded)
        return data


class DeliverySchema(StrictSchema):
    reference = Text(required=True, max_length=500)
    sha256 = fields.String(required=True, validate=[
        validate.Length(equal=64), validate.Regexp(r"^[0-9a-f]{64}$", error="must be 64 lowercase hex characters")])


class DisputeCreateSchema(StrictSchema):
    reason = Text(required=True, max_length=4000, multiline=True)


class DisputeSchema(Schema):
    id = fields.String()
    trade_id = fields.String()
    reason = fields.String()
    status = fields.String()
    refund_amount = fields.Integer(allow_none=True)
    created_at = UTCDateTime()
    resolved_at = UTCDateTime(allow_none=True)
    comment = fields.String(allow_none=True)


class TradeResolutionSchema(StrictSchema):
    refund_amount = StrictInteger(required=True, minimum=0)
    comment = Text(max_length=4000, multiline=True, allow_none=True)


class PayoutCreateSchema(StrictSchema):
    org_id = fields.String(required=True, validate=ID)
    currency = fields.String(required=True, validate=validate.OneOf(CURRENCIES))
    amount = StrictInteger(required=True, minimum=1)
    provider = fields.String(load_default="manual", validate=validate.OneOf(("manual", "stripe")))


class PayoutSchema(Schema):
    id = fields.String()
    org_id = fields.String()
    currency = fields.String()
    amount = fields.Integer()
    provider = fields.String()
    status = fields.String()
    provider_ref = fields.String(allow_none=True)
    created_at = UTCDateTime()


class WebhookAckSchema(Schema):
    received = fields.Boolean()
    applied = fields.Boolean()
    reason = fields.String()
    trade_id = fields.String()
